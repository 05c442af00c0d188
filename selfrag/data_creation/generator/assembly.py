"""Final assembly of generator training instances (the original ``postprocess_data.py``).

Per item, with its initial Retrieve label, IsUse label, sentence split, per-sentence Retrieve
labels and the IsRel / IsSup labels of its (sentence, passage) pairs:

- initial ``[No Retrieval]``: ``[No Retrieval]`` + output + IsUse token;
- otherwise sentence by sentence: a short (skipped) sentence is copied as is; sentence 0 follows
  the initial decision, later ones their own: ``[Retrieval]<paragraph>title\\ntext</paragraph>``
  + ``[Relevant]`` + sentence + IsSup token, or ``[Irrelevant]`` + sentence (passage chosen by
  :mod:`.selection`); ``[No Retrieval]`` / ``[Continue to Use Evidence]`` + sentence; then the
  IsUse token. ``REFUTES`` / ``SUPPORTS`` become ``false`` / ``true``; outputs starting with
  ``[Continue to Use Evidence]`` and empty ones are dropped.

Default (the paper's rule, original bugs fixed): every item is kept unless a label it needs is
unreadable (counted by reason); sentences keep the whitespace between them, so removing the
reflection tokens and paragraphs gives the original output back; a ``[Continue to Use
Evidence]`` before any passage is in the output becomes ``[Retrieval]`` (there is no evidence
to continue with); seeded.

``faithful=True``: the original's rules — its label fallbacks (:mod:`.predictions`), items with
an initial ``[No Retrieval]`` kept with probability 0.4, ``nq`` outputs with ``[No Retrieval]``
dropped with probability 0.5, ``[Utility:1]`` on true/false outputs flipped to ``[Utility:5]``,
sentences concatenated without separators, passage choice by :func:`.selection.select_original`
with its index bug — seeded too.
"""

from __future__ import annotations

import random
import re
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from selfrag.data_creation.generator.predictions import read_label
from selfrag.data_creation.generator.prompt_data import sentence_key
from selfrag.data_creation.generator.selection import (
    Candidate,
    Choice,
    select_original,
    select_paper,
)
from selfrag.tokens import (
    CONTINUE_EVIDENCE,
    NO_RETRIEVAL,
    PARAGRAPH_CLOSE,
    PARAGRAPH_OPEN,
    RELEVANT,
    RETRIEVAL,
    UTILITY,
)

P_KEEP_NO_RETRIEVAL = 0.4  # original: items with an initial [No Retrieval] kept this often
P_DROP_NQ_NO_RETRIEVAL = 0.5  # original: nq outputs containing [No Retrieval] dropped this often
_FEVER_LABELS = ((re.compile(r"\bREFUTES\b"), "false"), (re.compile(r"\bSUPPORTS\b"), "true"))


@dataclass
class AssemblyInputs:
    """Everything the assembly reads, keyed by item (``id``) or sentence (``q_id#sent_idx``)."""

    items: Sequence[Mapping]
    initial: Mapping[str, Mapping]
    utility: Mapping[str, Mapping]
    splitted: Mapping[str, Mapping] = field(default_factory=dict)
    multi: Mapping[str, Mapping] = field(default_factory=dict)
    relevance: Sequence[Mapping] = ()
    groundness: Sequence[Mapping] = ()


@dataclass
class AssemblyReport:
    """Counts of an assembly run, for the summary file."""

    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    unparseable: Counter = field(default_factory=Counter)
    notes: Counter = field(default_factory=Counter)
    tokens: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict:
        return {"kept": self.kept, "dropped": dict(self.dropped),
                "unparseable_predictions": dict(self.unparseable), "notes": dict(self.notes),
                "token_counts": dict(self.tokens)}


def fever_labels(text: str) -> str:
    """``REFUTES`` -> ``false``, ``SUPPORTS`` -> ``true``, as the original did."""
    for pattern, value in _FEVER_LABELS:
        text = pattern.sub(value, text)
    return text


def _candidates(inputs: AssemblyInputs, faithful: bool,
                report: AssemblyReport) -> dict[str, list[Candidate]]:
    """Pairs of each sentence as candidates; unreadable labels counted."""
    support = {(sentence_key(r), int(r["p_idx"])): r for r in inputs.groundness}
    by_sentence: dict[str, list[Candidate]] = defaultdict(list)
    for pair in inputs.relevance:
        key = sentence_key(pair)
        isrel = read_label("relevance", pair, faithful)
        if isrel is None:
            report.unparseable["relevance"] += 1
        issup = None
        sup_record = support.get((key, int(pair["p_idx"])))
        if isrel == RELEVANT:
            if sup_record is None:
                report.notes["relevant pair without IsSup prediction"] += 1
            else:
                issup = read_label("groundness", sup_record, faithful)
                if issup is None:
                    report.unparseable["groundness"] += 1
        by_sentence[key].append(Candidate(int(pair["p_idx"]), pair.get("title") or "",
                                          pair["text"], float(pair.get("score") or 0.0),
                                          isrel, issup))
    return by_sentence


def _segment(decision: str, text: str, choice: Choice | None) -> str:
    if decision != RETRIEVAL:
        return decision + text
    passage = f"{PARAGRAPH_OPEN}{choice.passage.title}\n{choice.passage.text}{PARAGRAPH_CLOSE}"
    return RETRIEVAL + passage + choice.isrel + text + (choice.issup or "")


class Assembler:
    """Builds the final instances (module docstring).

    Args:
        inputs: the labelled data.
        faithful: the original's rules instead of the paper's.
        seed: seed of every random choice (both modes).
        judge: the judge name written into each record's ``judge`` field.
    """

    def __init__(self, inputs: AssemblyInputs, faithful: bool = False, seed: int = 0,
                 judge: str = "critic"):
        self.inputs, self.faithful, self.judge = inputs, faithful, judge
        self.rng = random.Random(seed)
        self.report = AssemblyReport()
        self.candidates = _candidates(inputs, faithful, self.report)

    def run(self) -> list[dict]:
        """All kept instances in input order."""
        records = []
        for item in self.inputs.items:
            output = self._output(item)
            if output is None:
                continue
            output = self._finish(item, output)
            if output is None:
                continue
            self.report.kept += 1
            for token in re.findall(r"\[[^\[\]]+\]|</?paragraph>", output):
                self.report.tokens[token] += 1
            records.append({"instruction": item["instruction"], "output": output,
                            "input": "" if self.faithful else item.get("input") or "",
                            "id": item["id"], "dataset_name": item["dataset_name"],
                            "judge": self.judge})
        return records

    def _drop(self, reason: str) -> None:
        self.report.dropped[reason] += 1

    def _label(self, kind: str, record: Mapping | None) -> str | None:
        if record is None:
            return None
        label = read_label(kind, record, self.faithful)
        if label is None:
            self.report.unparseable[kind] += 1
        return label

    def _output(self, item: Mapping) -> str | None:
        key = item["id"]
        initial_record = self.inputs.initial.get(key)
        utility = self._label("utility", self.inputs.utility.get(key))
        initial = self._label("retrieval", initial_record)
        if initial_record is None or key not in self.inputs.utility:
            self._drop("no critic prediction")
            return None
        if utility is None or initial is None:
            self._drop("unparseable prediction")
            return None
        if self.faithful and utility == UTILITY[0] and item["output"] in ("true", "false"):
            utility = UTILITY[4]
        if self.faithful:
            if str(initial_record.get("pred", "")) == NO_RETRIEVAL:  # the raw prediction
                if self.rng.random() >= P_KEEP_NO_RETRIEVAL:
                    self._drop("sampled out (initial [No Retrieval], p=0.4)")
                    return None
                return NO_RETRIEVAL + item["output"] + utility
        elif initial == NO_RETRIEVAL:
            return NO_RETRIEVAL + fever_labels(item["output"]) + utility
        body = self._sentences(item, initial)
        return None if body is None else body + utility

    def _sentences(self, item: Mapping, initial: str) -> str | None:
        split = self.inputs.splitted.get(item["id"])
        if split is None:
            self._drop("no sentence split")
            return None
        texts, skipped = split["splitted_output"], split["skipped"]
        separators = split.get("separators") or [""] * len(texts)
        pieces, has_passage = [], False
        for k, text in enumerate(texts):
            tail = "" if self.faithful else separators[k]
            if not self.faithful:
                text = fever_labels(text)
            if skipped.get(str(k)):
                pieces.append(text + tail)
                continue
            decision = initial if k == 0 else self._label(
                "multi_retrieval", self.inputs.multi.get(f"{item['id']}#{k}"))
            if decision is None:
                if self.faithful:
                    decision = NO_RETRIEVAL
                else:
                    self._drop("unparseable prediction" if f"{item['id']}#{k}" in self.inputs.multi
                               else "no critic prediction")
                    return None
            if decision == CONTINUE_EVIDENCE and not has_passage and not self.faithful:
                self.report.notes["[Continue to Use Evidence] before any passage -> [Retrieval]"] += 1
                decision = RETRIEVAL
            choice = None
            if decision == RETRIEVAL:
                choice = self._choose(item, k)
                if choice is None:
                    if self.faithful:
                        continue  # the original drops the sentence
                    self._drop("no usable passage for a retrieving sentence")
                    return None
                has_passage = True
            pieces.append(_segment(decision, text, choice) + tail)
        return "".join(pieces)

    def _choose(self, item: Mapping, k: int) -> Choice | None:
        candidates = self.candidates.get(f"{item['id']}#{k}", [])
        if self.faithful:
            return select_original(candidates, item["dataset_name"], self.rng, index_bug=True)
        return select_paper(candidates, self.rng)

    def _finish(self, item: Mapping, output: str) -> str | None:
        if self.faithful:
            if (item["dataset_name"] == "nq" and NO_RETRIEVAL in output
                    and self.rng.random() < P_DROP_NQ_NO_RETRIEVAL):
                self._drop("sampled out (nq with [No Retrieval], p=0.5)")
                return None
            output = fever_labels(output)
        if output.startswith(CONTINUE_EVIDENCE):
            self._drop("starts with [Continue to Use Evidence]")
            return None
        if not output.strip() or output in UTILITY:
            self._drop("empty output")
            return None
        return output
