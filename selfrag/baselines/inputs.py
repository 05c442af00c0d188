"""Baseline inputs: gold answers, instructions, passages and prompts, as in the original
``run_baseline_lm.py`` and ``utils.PROMPT_DICT``.

Everything is validated before a model is loaded, so a bad line fails in a second with its file,
line and field.
"""

from __future__ import annotations

import ast
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from selfrag.errors import InputError, SelfRagError
from selfrag.io import read_records
from selfrag.prompts import BASELINE_PROMPTS, TASK_INST, canonical_task, format_choices

logger = logging.getLogger(__name__)

#: Tasks whose instruction gets the ``TASK_INST`` prefix in the original ``run_baseline_lm.py``.
PREFIXED_TASKS = ("fever", "arc_c")
#: Separator between an instruction prefix and the question in the original baseline script.
INPUT_SEPARATOR = "\n\n### Input:\n"


@dataclass
class BaselineExample:
    """One input record ready for prompting.

    Attributes:
        line: line (or list position) of the record in the input file.
        record: the record as read; the output file is this record with results added.
        instruction: the composed instruction (task prefix and, by default, ARC choices).
        golds: gold answers (the original baseline's field precedence), ``[]`` when the record
            has none.
        passages: the top-n passages used by retrieval and RAG modes.
    """

    line: int
    record: dict
    instruction: str
    golds: list[str]
    passages: list[dict] = field(default_factory=list)


def check_prompt_name(prompt_name: str, needs_paragraph: bool, faithful: bool = False) -> str:
    """Validate ``--prompt_name`` against the original ``utils.PROMPT_DICT``.

    With passages but a template without ``{paragraph}`` the ``_retrieval`` variant is used
    (the original silently dropped the passages); ``faithful`` keeps the name as given.

    Raises:
        SelfRagError: unknown name, or a passage template without passages.
    """
    if prompt_name not in BASELINE_PROMPTS:
        raise SelfRagError(f"--prompt_name: unknown {prompt_name!r}; choose from "
                           f"{', '.join(sorted(BASELINE_PROMPTS))}")
    has_slot = "{paragraph}" in BASELINE_PROMPTS[prompt_name]
    if has_slot and not needs_paragraph:
        raise SelfRagError(f"--prompt_name: {prompt_name!r} holds passages ({{paragraph}}); use "
                           "--mode retrieval (or rag_sequence/rag_token), or a template without it")
    if needs_paragraph and not has_slot and not faithful:
        variant = prompt_name + "_retrieval"
        logger.warning("--prompt_name %s has no {paragraph} slot: using %s", prompt_name, variant)
        return variant
    return prompt_name


def golds_of(path, line: int, item: Mapping) -> list[str]:
    """Gold answers, later fields overriding earlier ones (as the original baseline): ``golds``,
    else ``output``, then ``answers``, then ``possible_answers`` (a string-encoded list), then
    ``[answerKey]``."""
    golds = item.get("golds", item.get("output"))
    field_name = "golds" if "golds" in item else "output"
    if "answers" in item:
        golds, field_name = item["answers"], "answers"
    if "possible_answers" in item:
        golds, field_name = item["possible_answers"], "possible_answers"
        if isinstance(golds, str):
            try:
                golds = ast.literal_eval(golds)  # a Python literal, never executed
            except (ValueError, SyntaxError):
                raise InputError(path, "not a list literal", line, field_name) from None
    if "answerKey" in item:
        golds, field_name = [str(item["answerKey"])], "answerKey"
    if golds is None:
        return []
    if isinstance(golds, str):
        golds = [golds]
    if not isinstance(golds, list) or not all(isinstance(g, (str, int, float)) for g in golds):
        raise InputError(path, "must be a string or a list of strings", line, field_name)
    return [str(g) for g in golds]


def compose_instruction(question: str, task: str | None, prefix: str | None,
                        choices: Mapping | None, faithful: bool) -> str:
    """``prefix + "\\n\\n### Input:\\n" + question`` (as the original ``run_baseline_lm.py``).

    The prefix is ``--instruction`` when given, else ``TASK_INST`` for fever/arc_c. ARC choices
    are appended by default; the original never showed them (``faithful``).
    """
    if prefix is None and task in PREFIXED_TASKS:
        prefix = TASK_INST[task]
    text = question if prefix is None else prefix + INPUT_SEPARATOR + question
    if task == "arc_c" and choices and not faithful:
        text += format_choices(choices["label"], choices["text"])
    return text


def _question(path, line: int, item: Mapping) -> str:
    for key in ("instruction", "question", "input"):
        if isinstance(item.get(key), str) and item[key].strip():
            return item[key]
    raise InputError(path, "missing or empty (also looked for 'question', 'input')", line,
                     "instruction")


def _check_passages(path, line: int, ctxs, top_n: int, key: str) -> list[dict]:
    if not isinstance(ctxs, list) or not ctxs:
        raise InputError(path, "no passages, but this mode needs them (give --retrieval_file, "
                         "or add ctxs with retrieval_lm/passage_retrieval.py)", line, key)
    for number, passage in enumerate(ctxs[:top_n]):
        if not isinstance(passage, dict) or not isinstance(passage.get("text"), str):
            raise InputError(path, f"passage {number} needs a string 'text'", line, key)
    return ctxs[:top_n]


def load_retrieval_passages(retrieval_file: str | Path, records: Sequence[tuple[int, dict]],
                            input_file: str | Path) -> list[tuple[Path, int, object]]:
    """Passages for each input record from ``--retrieval_file``: matched by ``id`` when both
    files carry ids, else by position, as the original baseline did. Returns ``(file, line, ctxs)``
    per record.

    Raises:
        InputError: an id missing from the retrieval file, or files of different lengths.
    """
    retrieval = read_records(retrieval_file, allow_empty=False)
    path = Path(retrieval_file)
    by_id = {str(r["id"]): (line, r) for line, r in retrieval if "id" in r}
    use_ids = bool(by_id) and all("id" in item for _, item in records)
    found = []
    for position, (line, item) in enumerate(records):
        if use_ids:
            if str(item["id"]) not in by_id:
                raise InputError(input_file, f"id {item['id']!r} not found in {retrieval_file}",
                                 line, "id")
            r_line, r_item = by_id[str(item["id"])]
        else:
            if position >= len(retrieval):
                raise InputError(retrieval_file, f"has {len(retrieval)} records but the input "
                                 f"has {len(records)} (records without ids match by position)")
            r_line, r_item = retrieval[position]
        key = "ctxs" if "ctxs" in r_item else "top_contexts"
        found.append((path, r_line, r_item.get(key)))
    return found


def load_baseline_examples(input_file: str | Path, task: str | None = None,
                           instruction: str | None = None, need_passages: bool = False,
                           top_n: int = 1, retrieval_file: str | Path | None = None,
                           faithful: bool = False) -> list[BaselineExample]:
    """Read and validate a baseline input file (``.json`` list or JSONL).

    Raises:
        InputError: naming the file, line and field of the first problem found.
    """
    task = canonical_task(task)
    records = read_records(input_file, allow_empty=False)
    if not records:
        raise InputError(input_file, "no records")
    external = (load_retrieval_passages(retrieval_file, records, input_file)
                if retrieval_file and need_passages else None)
    examples = []
    for index, (line, item) in enumerate(records):
        choices = item.get("choices") if isinstance(item.get("choices"), dict) else None
        example = BaselineExample(
            line=line, record=item, golds=golds_of(input_file, line, item),
            instruction=compose_instruction(_question(input_file, line, item), task, instruction,
                                            choices, faithful))
        if need_passages:
            if external is not None:
                path, r_line, ctxs = external[index]
                example.passages = _check_passages(path, r_line, ctxs, top_n, "ctxs")
            else:
                key = "top_contexts" if "top_contexts" in item and "ctxs" not in item else "ctxs"
                example.passages = _check_passages(input_file, line, item.get(key), top_n, key)
        examples.append(example)
    return examples


def format_paragraph(passages: Sequence[Mapping], start: int = 0) -> str:
    """``"[i] " + title + "\\n" + text`` per passage, joined by newlines (as the original)."""
    return "\n".join(f"[{start + i}] {p.get('title') or ''}\n{p['text']}"
                     for i, p in enumerate(passages))


def build_prompt(prompt_name: str, instruction: str, paragraph: str | None = None) -> str:
    """Fill a template of the original ``utils.PROMPT_DICT``."""
    return BASELINE_PROMPTS[prompt_name].format(instruction=instruction, paragraph=paragraph or "")
