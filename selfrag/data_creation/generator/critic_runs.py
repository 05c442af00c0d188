"""Critic inference (the original ``run_reward_vllm.py``): one reflection label per item.

For each item the critic reads its instruction for the task and the item formatted with the
task's input template (:mod:`selfrag.data_creation.critic.templates`), greedy, 15 new tokens.
Differences from the original, on purpose:

- The prompt is the critic's *training* prompt (:func:`selfrag.prompts.format_critic_prompt`).
  The original queried with the Alpaca preamble (a train/inference mismatch); ``faithful=True``
  does that (:data:`~selfrag.data_creation.critic.templates.ALPACA_WITH_INPUT`).
- Every item is saved; the original lost the last ``len % batch_size`` items.
- A sentence with no preceding sentences gets the template without that line; the original
  wrote the literal ``None`` (kept with ``faithful=True``).
- Any backend of :func:`selfrag.lm.load_lm`, batched; identical prompts are run once; a journal
  makes an interrupted run resume after its last finished batch.

Each returned record is the item plus ``pred`` (the cleaned reply), ``label`` (the reflection
token read by :func:`selfrag.data_creation.critic.labels.parse_label`, or ``None``),
``problem`` (why it is ``None``) and ``judge`` (the critic model name).
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from selfrag.data_creation.critic.labels import parse_label
from selfrag.data_creation.critic.templates import (
    ALPACA_WITH_INPUT,
    INPUT_TEMPLATES,
    INSTRUCTIONS,
    format_input,
)
from selfrag.errors import InputError, SelfRagError
from selfrag.lm.base import GenerationRequest, LanguageModel
from selfrag.prompts import format_critic_prompt
from selfrag.resume import Journal

logger = logging.getLogger(__name__)

MAX_NEW_TOKENS = 15  # as in the original run_reward_vllm.py
BATCH_SIZE = 10      # as in the original run_reward_vllm.py
#: Strings the original ``run_reward_vllm.py`` removed from critic replies.
REMOVED_STRINGS = ("</s>", "<unk>", "[PAD]")


@dataclass(frozen=True)
class CriticTask:
    """One critic task of the pipeline: its instruction, input template and label kind."""

    name: str
    inst_mode: str
    input_mode: str
    kind: str
    no_preceding_mode: str | None = None


#: The tasks by the original's ``--task`` names (pipeline steps 1, 2, 6, 9 and 10).
TASKS: dict[str, CriticTask] = {t.name: t for t in (
    CriticTask("retrieval", "retrieval_instruction", "retrieval_input", "retrieval"),
    CriticTask("utility", "utility_instruction", "utility_input", "utility"),
    CriticTask("multi_retrieval", "retrieval_multi_instruction", "retrieval_multi_input",
               "multi_retrieval"),
    CriticTask("multi_retrieval_three_way", "multi_retrieval_three_way_instruction",
               "multi_retrieval_three_way_input", "multi_retrieval_three_way"),
    CriticTask("relevance", "relevance_instruction", "relevance_input", "relevance"),
    CriticTask("groudness", "ground_multi_instruction", "ground_multi_input", "groundness",
               "ground_multi_input_wo_preceding"),
)}
TASKS["groundness"] = TASKS["groudness"]
_PRECEDING_LINE = "Preceding sentences: {preceding_sentences}\n"


def full_instruction(item: Mapping) -> str:
    """The task instruction the critic sees: ``instruction``, plus `` input`` when non-empty."""
    extra = item.get("input") or ""
    return f"{item['instruction']} {extra}" if extra else str(item["instruction"])


def critic_input(task: CriticTask, item: Mapping, faithful: bool = False,
                 input_mode: str | None = None) -> str:
    """Fill the task's input template from ``item``.

    An empty or missing ``preceding_sentences`` selects the template without that line: the
    task's ``_wo_preceding`` template, or, for templates that have none, the same template with
    the line removed. ``faithful`` writes the literal ``None`` as the original did.
    """
    mode = input_mode or task.input_mode
    fields = {**item, "instruction": full_instruction(item)}
    template = INPUT_TEMPLATES[mode]
    if "{preceding_sentences}" in template and not item.get("preceding_sentences"):
        if faithful:
            fields["preceding_sentences"] = "None"
        elif task.no_preceding_mode and mode == task.input_mode:
            mode = task.no_preceding_mode
        else:
            return template.replace(_PRECEDING_LINE, "").format_map(
                {k: "" if v is None else v for k, v in fields.items()})
    return format_input(mode, fields)


def critic_prompt(instruction: str, input_text: str, faithful: bool = False) -> str:
    """The training prompt of the critic, or the original's Alpaca inference prompt."""
    if faithful:
        return ALPACA_WITH_INPUT.format(instruction=instruction, input=input_text)
    return format_critic_prompt(instruction, input_text)


def clean_prediction(text: str) -> str:
    """Cut at the first blank line and remove ``</s>``, ``<unk>``, ``[PAD]`` (as the original)."""
    text = text.split("\n\n")[0]
    for junk in REMOVED_STRINGS:
        text = text.replace(junk, "")
    return text.strip()


def generate_predictions(lm: LanguageModel, prompts: Sequence[str], *,
                         max_new_tokens: int = MAX_NEW_TOKENS, batch_size: int = BATCH_SIZE,
                         journal_path: str | os.PathLike | None = None,
                         fingerprint: Mapping | None = None) -> list[str]:
    """Greedy replies to ``prompts`` (cleaned), every prompt answered, remainder included.

    Identical prompts are generated once. With ``journal_path`` each finished batch is journaled
    and a rerun with the same ``fingerprint`` (model, settings) resumes after it.
    """
    unique = list(dict.fromkeys(prompts))
    replies: dict[str, str] = {}
    journal = None
    if journal_path is not None:
        digest = hashlib.sha256("\x00".join(unique).encode()).hexdigest()[:16]
        journal = Journal(journal_path, {**(fingerprint or {}), "prompts": digest,
                                         "max_new_tokens": max_new_tokens,
                                         "batch_size": batch_size})
        for unit in journal.load():
            replies.update(zip(unique[unit["start"]:unit["start"] + len(unit["preds"])],
                               unit["preds"]))
        if replies:
            logger.info("resuming: %d of %d prompts already answered", len(replies), len(unique))
    request = GenerationRequest(max_new_tokens=max_new_tokens)
    for start in range(0, len(unique), batch_size):
        batch = unique[start:start + batch_size]
        if all(p in replies for p in batch):
            continue
        preds = [clean_prediction(g.text) for g in lm.generate(batch, request)]
        replies.update(zip(batch, preds))
        if journal is not None:
            journal.append({"start": start, "preds": preds})
    return [replies[p] for p in prompts]


class CriticJudge:
    """Labels items with a critic LM (see the module docstring).

    Args:
        lm: any :class:`~selfrag.lm.base.LanguageModel`.
        name: the model name written into every record's ``judge`` field.
        instructions: critic instructions by ``inst_mode`` (default: ours, see
            :func:`selfrag.data_creation.critic.templates.load_instructions`).
        faithful: Alpaca prompt and literal ``None`` preceding sentences, as the original.
        max_new_tokens, batch_size: generation settings (defaults: the original's 15 and 10).
        identity: what identifies the model's weights (:func:`selfrag.resume.model_identity`);
            part of the fingerprint, so a journal of another model's replies is not resumed.
    """

    def __init__(self, lm: LanguageModel, name: str, instructions: Mapping[str, str] | None = None,
                 faithful: bool = False, max_new_tokens: int = MAX_NEW_TOKENS,
                 batch_size: int = BATCH_SIZE, identity: dict | str | None = None):
        self.lm, self.name, self.identity = lm, name, identity
        self.instructions = dict(instructions or INSTRUCTIONS)
        self.faithful, self.max_new_tokens, self.batch_size = faithful, max_new_tokens, batch_size

    def prompts(self, task: CriticTask, items: Sequence[Mapping], source: str = "<items>",
                inst_mode: str | None = None, input_mode: str | None = None) -> list[str]:
        """The prompt of every item; a missing template field is an InputError."""
        instruction = self.instructions[inst_mode or task.inst_mode]
        prompts = []
        for number, item in enumerate(items, start=1):
            try:
                prompts.append(critic_prompt(instruction, critic_input(task, item, self.faithful,
                                                                       input_mode), self.faithful))
            except KeyError as err:
                raise InputError(source, f"needed by the {task.name} critic input", line=number,
                                 field=err.args[0]) from None
        return prompts

    def fingerprint(self) -> dict:
        fingerprint = {"judge": self.name, "faithful": self.faithful, "instructions": hashlib.sha256(
            repr(sorted(self.instructions.items())).encode()).hexdigest()[:16]}
        if self.identity is not None:
            fingerprint["model"] = self.identity
        return fingerprint

    def label(self, task_name: str, items: Sequence[Mapping], *, source: str = "<items>",
              journal_path: str | os.PathLike | None = None, inst_mode: str | None = None,
              input_mode: str | None = None) -> list[dict]:
        """Run the critic on ``items`` and return them with ``pred``, ``label``, ``problem``,
        ``judge``."""
        task = TASKS.get(task_name)
        if task is None:
            raise SelfRagError(f"unknown critic task {task_name!r}; choose from {sorted(TASKS)}")
        prompts = self.prompts(task, items, source, inst_mode, input_mode)
        preds = generate_predictions(self.lm, prompts, max_new_tokens=self.max_new_tokens,
                                     batch_size=self.batch_size, journal_path=journal_path,
                                     fingerprint={**self.fingerprint(), "task": task.name})
        return [labelled(item, pred, task.kind, self.name) for item, pred in zip(items, preds)]


def labelled(item: Mapping, pred: str, kind: str, judge: str) -> dict:
    """``item`` plus its prediction read as a label of ``kind``."""
    parsed = parse_label(kind, pred)
    return {**item, "pred": pred, "label": parsed.label, "problem": parsed.problem,
            "judge": judge}
