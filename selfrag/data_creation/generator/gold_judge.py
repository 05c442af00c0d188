"""The gold-answer judge: reflection labels from gold answers instead of a critic model.

For datasets with gold answers (PopQA, NQ, TriviaQA, ARC / OpenBookQA, PubHealth / FEVER) the
labels a critic would predict can be read off the answers, with no model at all — so the whole
pipeline runs offline and fast, and its labels are exact where the rules apply. Every record it
labels carries ``"judge": "gold-answer"`` (critic-labelled ones carry the critic's model name),
its ``pred`` is the label token itself and ``reason`` says why.

Gold answers of an item: its ``answers`` list when present, else its ``output``. Matching is
:func:`selfrag.evaluation.metrics.normalize_answer` (lower case, no punctuation or articles) and
whole-word containment (Wikipedia's citation markers, ``[4]``, dropped first). Three answer
types:

- short answers (PopQA, NQ, TriviaQA, ...): the strings themselves;
- multiple choice (``arc_easy``, ``arc_hard``, ``arc_c``, ``obqa``): the gold letter, and the text
  of that option read from the instruction (``"\\nB: text"``); a passage or sentence
  "contains the answer" when it contains the option text (a sentence also when it is the letter);
- true/false claims (``fever``, ``pubhealth``): the verdict; a passage "contains the answer" when
  it covers at least half of the claim's words (the claim is what must be verified).

Rules:

- Retrieve (input only): ``[Retrieval]`` for every item — all these datasets are
  knowledge-intensive, where the paper retrieves — except items of the ``no_knowledge`` dataset
  (instructions that need no facts, e.g. arithmetic; their ``answers`` are exact): ``[No
  Retrieval]``.
- Retrieve (sentence k > 0): ``[Retrieval]`` when the sentence states a gold answer (it carries
  a checkable fact), else ``[No Retrieval]``. ``[Continue to Use Evidence]`` is never given.
- IsRel: ``[Relevant]`` when the passage contains a gold answer, else ``[Irrelevant]``.
- IsSup: ``[Fully supported]`` when the sentence and the passage share a gold answer (true/false:
  the passage covers the claim and the sentence's verdict is the gold one);
  ``[Partially supported]`` when both contain gold answers but different aliases;
  ``[No support / Contradictory]`` otherwise.
- IsUse: ``[Utility:5]`` when the output is correct (contains a gold answer; multiple choice: its
  letter is the gold letter; true/false: its verdict is the gold one), else ``[Utility:1]``.

Items of other datasets need an ``answers`` field; one without is an InputError.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from selfrag.data_creation.generator.retrieval_data import question_part
from selfrag.errors import InputError, SelfRagError
from selfrag.evaluation.metrics import normalize_answer
from selfrag.tokens import (
    FULLY_SUPPORTED,
    IRRELEVANT,
    NO_RETRIEVAL,
    NO_SUPPORT,
    PARTIALLY_SUPPORTED,
    RELEVANT,
    RETRIEVAL,
    UTILITY,
)

JUDGE_NAME = "gold-answer"
QA_DATASETS = ("popqa", "nq", "triviaqa", "tqa")
MULTIPLE_CHOICE_DATASETS = ("arc_easy", "arc_hard", "arc_c", "obqa")
CLAIM_DATASETS = ("fever", "pubhealth")
#: Datasets whose instructions need no knowledge (:mod:`selfrag.reproduce.instructions`).
NO_KNOWLEDGE_DATASETS = ("no_knowledge",)
GOLD_DATASETS = QA_DATASETS + MULTIPLE_CHOICE_DATASETS + CLAIM_DATASETS
#: True/false: share of the claim's words a passage must contain to count as relevant.
CLAIM_COVERAGE = 0.5


#: Wikipedia's citation markers ("Iran.[4]"): dropped before matching, or normalisation would
#: glue the number to the word before it ("iran4").
CITATION = re.compile(r"\[\d+\]")


def plain(text: str) -> str:
    """``text`` without citation markers, answer-normalised."""
    return normalize_answer(CITATION.sub(" ", text))


def contains(text: str, answer: str) -> bool:
    """Whole-word containment of ``answer`` in ``text`` after answer normalisation."""
    answer = normalize_answer(answer)
    return bool(answer) and f" {answer} " in f" {plain(text)} "


@dataclass(frozen=True)
class Gold:
    """The gold answers of one item (see the module docstring)."""

    kind: str  # "qa", "choice" or "claim"
    answers: tuple[str, ...]
    letter: str = ""
    claim: str = ""

    def mentioned(self, text: str) -> set[str]:
        """The gold answers ``text`` contains."""
        if self.kind == "claim":
            return {a for a in self.answers if contains(text, a)}
        found = {a for a in self.answers if contains(text, a)}
        if self.kind == "choice" and text.strip().rstrip(".").strip() == self.letter:
            found |= set(self.answers) or {self.letter}
        return found

    def passage_has_answer(self, passage: str) -> bool:
        if self.kind == "claim":
            words = normalize_answer(self.claim).split()
            text = f" {plain(passage)} "
            return bool(words) and sum(f" {w} " in text for w in words) / len(words) >= CLAIM_COVERAGE
        return bool(self.mentioned(passage))


def gold_of(item: Mapping) -> Gold | None:
    """The item's gold answers, or ``None`` when it has none (not a gold dataset, no answers)."""
    dataset = str(item.get("dataset_name") or "")
    answers = item.get("answers")
    if dataset in MULTIPLE_CHOICE_DATASETS:
        letter = str((answers or [item["output"]])[0]).strip()[:1]
        option = re.search(rf"(?:^|\n){re.escape(letter)}: ?([^\n]*)", item["instruction"])
        texts = (option.group(1).strip(),) if option and option.group(1).strip() else ()
        return Gold("choice", texts, letter=letter)
    if dataset in CLAIM_DATASETS:
        verdicts = tuple(str(a).lower() for a in (answers or [item["output"]]))
        verdicts = tuple({"refutes": "false", "supports": "true"}.get(v, v) for v in verdicts)
        return Gold("claim", verdicts, claim=question_part(item["instruction"], "fever"))
    if answers or dataset in QA_DATASETS:
        return Gold("qa", tuple(answers or [item["output"]]))
    return None


class GoldJudge:
    """Labels pipeline records from the gold answers of their items (module docstring).

    Args:
        items: the input items (``id``, ``instruction``, ``output``, ``dataset_name``,
            optional ``answers``).
        source: the items' file, for error messages.
    """

    name = JUDGE_NAME

    def __init__(self, items: Sequence[Mapping], source: str | os.PathLike = "<items>"):
        self.gold: dict[str, Gold] = {}
        for number, item in enumerate(items, start=1):
            gold = gold_of(item)
            if gold is None:
                raise InputError(source, f"the gold-answer judge needs gold answers: dataset "
                                 f"{item.get('dataset_name')!r} is not one of {GOLD_DATASETS} "
                                 "and the item has no 'answers'", line=number, field="answers")
            self.gold[str(item["id"])] = gold

    def fingerprint(self) -> dict:
        return {"judge": self.name}

    def label(self, task_name: str, items: Sequence[Mapping], **_ignored) -> list[dict]:
        """``items`` with ``pred`` (= ``label``), ``label``, ``reason``, ``problem``, ``judge``."""
        rule = {"retrieval": self._retrieval, "utility": self._utility,
                "multi_retrieval": self._multi, "multi_retrieval_three_way": self._multi,
                "relevance": self._relevance, "groudness": self._support,
                "groundness": self._support}.get(task_name)
        if rule is None:
            raise SelfRagError(f"the gold-answer judge has no rule for task {task_name!r}")
        out = []
        for item in items:
            gold = self.gold.get(str(item.get("q_id", item.get("id"))))
            if gold is None:
                raise SelfRagError(f"gold-answer judge: record of unknown item "
                                   f"{item.get('q_id', item.get('id'))!r}")
            label, reason = rule(gold, item)
            out.append({**item, "pred": label, "label": label, "reason": reason, "problem": "",
                        "judge": self.name})
        return out

    @staticmethod
    def _retrieval(gold: Gold, item: Mapping) -> tuple[str, str]:
        if item.get("dataset_name") in NO_KNOWLEDGE_DATASETS:
            return NO_RETRIEVAL, "the instruction needs no knowledge"
        return RETRIEVAL, "knowledge-intensive dataset with gold answers"

    @staticmethod
    def _utility(gold: Gold, item: Mapping) -> tuple[str, str]:
        output = item["output"]
        if gold.kind == "choice":
            correct = output.strip().rstrip(".").strip()[:1] == gold.letter
        else:
            correct = bool(gold.mentioned(output))
        return (UTILITY[4], "output is correct") if correct else (UTILITY[0], "output is wrong")

    @staticmethod
    def _multi(gold: Gold, item: Mapping) -> tuple[str, str]:
        if gold.mentioned(item["target_output"]):
            return RETRIEVAL, "sentence states a gold answer"
        return NO_RETRIEVAL, "sentence states no gold answer"

    @staticmethod
    def _relevance(gold: Gold, item: Mapping) -> tuple[str, str]:
        if gold.passage_has_answer(item["evidence"]):
            return RELEVANT, "passage contains a gold answer"
        return IRRELEVANT, "passage contains no gold answer"

    @staticmethod
    def _support(gold: Gold, item: Mapping) -> tuple[str, str]:
        sentence, passage = item["target_output"], item["evidence"]
        in_sentence = gold.mentioned(sentence)
        if gold.kind == "claim":
            if in_sentence and gold.passage_has_answer(passage):
                return FULLY_SUPPORTED, "passage covers the claim; verdict is the gold one"
            return NO_SUPPORT, "passage does not cover the claim or verdict is wrong"
        if not in_sentence:
            return NO_SUPPORT, "sentence states no gold answer"
        in_passage = {a for a in gold.answers if contains(passage, a)}
        if in_sentence & in_passage:
            return FULLY_SUPPORTED, "sentence and passage share a gold answer"
        if in_passage:
            return PARTIALLY_SUPPORTED, "passage has another alias of the gold answer"
        return NO_SUPPORT, "passage contains no gold answer"
