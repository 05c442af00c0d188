"""Loading short-form evaluation files into validated examples (the original evaluation
files, read as the original ``run_short_form.py`` does).

Everything is checked before a model is loaded, so that a bad line fails in a second with its
file, line and field, and not an hour into a run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from selfrag.errors import InputError
from selfrag.io import read_records
from selfrag.prompts import canonical_task, choice_letter, format_prompt, short_form_instruction

#: ``--task`` values of run_short_form.py. ``fever`` and ``pubhealth`` are the same task
#: (PubHealth is evaluated with FEVER's instruction, see :func:`selfrag.prompts.canonical_task`);
#: the others are open-domain QA.
SHORT_FORM_TASKS = ("fever", "pubhealth", "arc_c", "popqa", "triviaqa", "nq", "qa")


@dataclass
class ShortFormExample:
    line: int
    question: str
    instruction: str
    prompt: str
    answers: list[str] | None
    passages: list[dict] = field(default_factory=list)


def _question(path, line, item) -> str:
    for key in ("question", "instruction"):
        if isinstance(item.get(key), str) and item[key].strip():
            return item[key]
    raise InputError(path, "missing or empty (also looked for 'instruction')", line, "question")


def _answers(path, line, item, task, faithful) -> list[str] | None:
    if task == "arc_c":
        if "answerKey" not in item:
            raise InputError(path, "missing", line, "answerKey")
        key = str(item["answerKey"])
        return [key if faithful else choice_letter(key)]
    answers = item.get("answers", item.get("answer"))
    if answers is None:
        return None
    if isinstance(answers, str):
        answers = [answers]
    if not isinstance(answers, list) or not all(isinstance(a, str) for a in answers):
        raise InputError(path, "must be a string or a list of strings", line, "answers")
    return answers


def _choices(path, line, item) -> dict:
    choices = item.get("choices")
    if (not isinstance(choices, dict) or not isinstance(choices.get("label"), list)
            or not isinstance(choices.get("text"), list)
            or len(choices["label"]) != len(choices["text"])):
        raise InputError(path, "must be {'label': [...], 'text': [...]} of equal length", line,
                         "choices")
    return choices


def _passages(path, line, item, ndocs, need_passages) -> list[dict]:
    key = "ctxs" if "ctxs" in item else "top_contexts"
    ctxs = item.get(key) or []
    if not isinstance(ctxs, list):
        raise InputError(path, "must be a list of passages", line, key)
    if not need_passages:
        return ctxs[:ndocs]
    if not ctxs:
        raise InputError(path, "no passages, but retrieval is on (use --mode no_retrieval, or "
                         "add passages with retrieval_lm/passage_retrieval.py)", line, "ctxs")
    if len(ctxs) < ndocs:
        raise InputError(path, f"has {len(ctxs)} passages but --ndocs is {ndocs}", line, key)
    for number, passage in enumerate(ctxs[:ndocs]):
        if not isinstance(passage, dict) or not isinstance(passage.get("text"), str):
            raise InputError(path, f"passage {number} needs a string 'text'", line, key)
    return ctxs[:ndocs]


def load_short_form_examples(path: str | Path, task: str | None, ndocs: int,
                             need_passages: bool = True, faithful: bool = False,
                             use_ctxs: bool = True) -> list[ShortFormExample]:
    """Read a short-form input file into prompts, gold answers and up to ``ndocs`` passages.

    ``need_passages``: every record must carry at least ``ndocs`` passages (retrieval on, no
    retriever). ``use_ctxs=False`` ignores the records' passages (a retriever supplies them).

    Raises:
        InputError: naming the file, line and field of the first problem found.
    """
    task = canonical_task(task)
    examples = []
    for line, item in read_records(path, allow_empty=False):
        question = _question(path, line, item)
        choices = _choices(path, line, item) if task == "arc_c" else None
        instruction = short_form_instruction(question, task, choices, faithful)
        examples.append(ShortFormExample(
            line=line, question=question, instruction=instruction, prompt=format_prompt(instruction),
            answers=_answers(path, line, item, task, faithful),
            passages=_passages(path, line, item, ndocs, need_passages) if use_ctxs else [],
        ))
    if not examples:
        raise InputError(path, "no records")
    labelled = [e.answers is not None for e in examples]
    if any(labelled) and not all(labelled):
        missing = examples[labelled.index(False)]
        raise InputError(path, "missing here but present on other lines", missing.line, "answers")
    return examples
