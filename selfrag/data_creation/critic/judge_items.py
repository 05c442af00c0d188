"""The items the critic labellers send to the judge: reading, filling in, checking, choosing a
prompt (as the original ``chatgpt_*.py`` scripts did).

Item schema (the original's README): ``instruction``, ``target_output`` (one output sentence),
``evidence`` (passage text), ``preceding_sentences``, ``output`` (the full output), ``q_id``,
``sent_idx``, ``p_idx``. As the original scripts did, a missing ``output`` is taken from
``answers[0]``, a missing ``target_output`` from ``output``, and a missing ``instruction`` from
``question`` (prefixed with a per-source instruction chosen by the ``q_id`` prefix); the
utility labeller appends a non-empty ``input`` to the instruction. Only the fields the chosen
prompt reads are required; a missing or non-text one is an :class:`InputError` naming file,
line and field, raised before any request is made.

Fixed original bugs (``faithful=True`` restores the first two):
- the three-way Retrieve prompt with preceding sentences was used for items *without* them
  and vice versa;
- the instruction built from ``question`` had no space after the source instruction;
- relevance without ``--multi_retrieval`` crashed (no such prompt): it uses the plain one here;
- ``--previous_results`` skipped by question id, so in sentence-level runs one labelled sentence
  hid all the others of its question; here an item is identified by (id, sent_idx, p_idx).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from selfrag.data_creation.critic.judge_prompts import PROMPTS, JudgePrompt
from selfrag.errors import InputError
from selfrag.io import read_records

#: Instructions put before a bare ``question``, by the source prefix of ``q_id`` (our wording).
SOURCE_INSTRUCTIONS = {
    "nq": "Answer the question below as briefly as possible; for example, to 'Which city is "
          "the capital of Italy?' reply just 'Rome'.",
    "fever": "Decide whether the statement below is true or false.",
    "wow": "Below is a conversation between two speakers, one turn per line. Write a reply to "
           "the last turn that is informative and engaging.",
}
#: Outputs holding this phrase are refusals, not answers: they are not sent to the judge.
REFUSAL_MARKER = "As a language model, I cannot"
LABELLERS = ("need_retrieval", "relevance", "groundness", "utility")


@dataclass(frozen=True)
class Item:
    """One item ready for the judge.

    Attributes:
        fields: the item after the fill-ins (written back as the record's ``input``).
        prompt: the prompt design chosen for it.
        source: ``file:line`` of the item, for messages.
    """

    fields: dict
    prompt: JudgePrompt
    source: str

    def render(self) -> str:
        return self.prompt.render(self.fields)


@dataclass(frozen=True)
class ItemOptions:
    """The labeller's flags that decide which items are sent and with which prompt."""

    multi_retrieval: bool = False
    three_way: bool = False
    faithful: bool = False


def has_preceding(item: Mapping) -> bool:
    """Whether the item is a later sentence with sentences before it (the original's test)."""
    return bool(item.get("sent_idx")) and bool(item.get("preceding_sentences"))


def choose_prompt(labeller: str, item: Mapping, options: ItemOptions) -> JudgePrompt:
    """The prompt design for ``item`` under ``labeller`` (see the module docstring)."""
    preceding = has_preceding(item)
    if labeller == "need_retrieval":
        if not options.multi_retrieval:
            return PROMPTS["retrieval"]
        if options.three_way and options.faithful:
            preceding = not preceding  # the original's inverted choice
        base = "multi_retrieval_three_way" if options.three_way else "multi_retrieval"
        return PROMPTS[base if preceding else f"{base}_no_preceding"]
    if labeller == "relevance":
        if not options.multi_retrieval:
            return PROMPTS["relevance"]
        return PROMPTS["relevance_multi" if preceding else "relevance_multi_no_preceding"]
    if labeller == "groundness":
        if not options.multi_retrieval:
            return PROMPTS["groundness_context"]
        return PROMPTS["groundness_multi" if preceding else "groundness_multi_no_preceding"]
    if labeller == "utility":
        return PROMPTS["utility"]
    raise ValueError(f"unknown labeller {labeller!r}; choose from {LABELLERS}")


def fill_in(item: dict, labeller: str, faithful: bool = False) -> dict:
    """A copy of ``item`` with the original's fill-ins (module docstring); ``item`` is unchanged."""
    item = dict(item)
    if "id" not in item and "q_id" in item:
        item["id"] = item["q_id"]
    answers = item.get("answers")
    if "output" not in item and answers:
        item["output"] = answers[0] if isinstance(answers, list) else answers
    if "target_output" not in item and "output" in item:
        item["target_output"] = item["output"]
    if "instruction" not in item and "question" in item:
        source = str(item.get("q_id", "")).split("_")[0]
        prefix = SOURCE_INSTRUCTIONS.get(source)
        joint = "" if faithful else " "
        item["instruction"] = (prefix + joint if prefix else "") + str(item["question"])
    if labeller == "utility" and isinstance(item.get("input"), str) and item["input"].strip():
        item["instruction"] = f"{item.get('instruction', '')} {item['input']}"
    return item


def identity(item: Mapping, faithful: bool = False) -> tuple:
    """What ``--previous_results`` matches items by (module docstring)."""
    key = item.get("id", item.get("q_id"))
    return (key,) if faithful else (key, item.get("sent_idx"), item.get("p_idx"))


def check_fields(item: Mapping, prompt: JudgePrompt, path: str, line: int) -> None:
    """Raise an :class:`InputError` for the first field ``prompt`` needs that is unusable."""
    for key in prompt.keys:
        value = item.get(key)
        if value is None:
            raise InputError(path, f"missing (the {prompt.name!r} prompt needs it)", line=line,
                             field=key)
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise InputError(path, f"must be text, got {type(value).__name__}", line=line,
                             field=key)


@dataclass
class Selection:
    """The items to label, and how many were left out and why."""

    items: list[Item]
    skipped: dict[str, int]


def select_items(labeller: str, input_files: Sequence[str], options: ItemOptions,
                 previous: Iterable[tuple] = ()) -> Selection:
    """Read, fill in, filter and check every item of ``input_files`` (all before any request).

    Args:
        previous: identities (:func:`identity`) already labelled by earlier runs: skipped.

    Raises:
        InputError: an unreadable file or an unusable item (file, line, field).
    """
    done = set(previous)
    items: list[Item] = []
    skipped = {"already labelled (--previous_results)": 0, "refusal output": 0,
               "first sentence or no sent_idx (--multi_retrieval)": 0}
    for path in input_files:
        for line, record in read_records(path, allow_empty=False):
            item = fill_in(record, labeller, options.faithful)
            if done and identity(item, options.faithful) in done:
                skipped["already labelled (--previous_results)"] += 1
                continue
            if labeller == "need_retrieval" and options.multi_retrieval:
                sent_idx = item.get("sent_idx")
                check_sent_idx(sent_idx, path, line)
                if sent_idx is None or sent_idx <= 0:  # the original labels later sentences only
                    skipped["first sentence or no sent_idx (--multi_retrieval)"] += 1
                    continue
            if labeller in ("relevance", "groundness") and REFUSAL_MARKER in str(
                    item.get("output", "")):
                skipped["refusal output"] += 1
                continue
            check_sent_idx(item.get("sent_idx"), path, line)
            prompt = choose_prompt(labeller, item, options)
            check_fields(item, prompt, str(path), line)
            items.append(Item(item, prompt, f"{path}:{line}"))
    return Selection(items, {reason: n for reason, n in skipped.items() if n})


def check_sent_idx(sent_idx: object, path, line: int) -> None:
    """``sent_idx``, when given, must be an integer (it decides the prompt and the filter)."""
    if sent_idx is not None and (not isinstance(sent_idx, int) or isinstance(sent_idx, bool)):
        raise InputError(path, f"must be an integer, got {type(sent_idx).__name__}", line=line,
                         field="sent_idx")


def previous_identities(paths: Sequence[str], faithful: bool = False) -> set[tuple]:
    """Identities of the items in earlier output files (records ``{"input": item, ...}``)."""
    found = set()
    for path in paths:
        for line, record in read_records(path, allow_empty=True):  # an earlier output
            item = record.get("input")
            if not isinstance(item, dict):
                raise InputError(path, "must be the labelled item (an object)", line=line,
                                 field="input")
            found.add(identity(fill_in(item, "", faithful), faithful))
    return found
