"""Loading long-form inputs: ASQA/ELI5 (ALCE format) and FactScore biographies, the files the
original ``run_long_form_static.py`` reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from selfrag.errors import InputError
from selfrag.io import read_records
from selfrag.prompts import format_prompt, long_form_instruction

LONG_FORM_TASKS = ("asqa", "eli5", "factscore")


@dataclass
class LongFormExample:
    line: int
    item: dict
    question: str
    prompt: str
    passages: list[dict] = field(default_factory=list)


def _text_field(path, line, item, names: tuple[str, ...]) -> str:
    for name in names:
        if isinstance(item.get(name), str) and item[name].strip():
            return item[name]
    raise InputError(path, "missing or empty", line, names[0])


def _passages(path, line, item, ndocs, need_passages) -> list[dict]:
    key = "docs" if "docs" in item else "ctxs"
    docs = item.get(key) or []
    if not isinstance(docs, list):
        raise InputError(path, "must be a list of passages", line, key)
    if need_passages and len(docs) < ndocs:
        what = "no passages" if not docs else f"{len(docs)} passages"
        raise InputError(path, f"has {what} but --ndocs is {ndocs} (or use a retriever / "
                         "--mode no_retrieval)", line, key)
    for number, doc in enumerate(docs[:ndocs]):
        if not isinstance(doc, dict) or not isinstance(doc.get("text"), str):
            raise InputError(path, f"passage {number} needs a string 'text'", line, key)
    return docs[:ndocs]


def load_long_form_examples(path: str | Path, task: str, ndocs: int, need_passages: bool = True,
                            use_docs: bool = True) -> list[LongFormExample]:
    """ASQA/ELI5: ``question`` + ``docs``; prompt ``TASK_INST + "## Input:\\n\\n" + question``.
    FactScore: ``input`` (e.g. "Tell me a bio of X.") + ``ctxs``; the input is the instruction.
    """
    if task not in LONG_FORM_TASKS:
        raise ValueError(f"unknown long-form task {task!r}; choose from {LONG_FORM_TASKS}")
    examples = []
    for line, item in read_records(path, allow_empty=False):
        if task == "factscore":
            question = _text_field(path, line, item, ("input", "question"))
            instruction = question
        else:
            question = _text_field(path, line, item, ("question",))
            instruction = long_form_instruction(question, task)
        passages = _passages(path, line, item, ndocs, need_passages) if use_docs else []
        examples.append(LongFormExample(line, item, question, format_prompt(instruction), passages))
    if not examples:
        raise InputError(path, "no records")
    return examples
