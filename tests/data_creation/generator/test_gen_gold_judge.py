"""The gold-answer judge's rules on hand-made items."""

from __future__ import annotations

import pytest

from selfrag.data_creation.generator.gold_judge import JUDGE_NAME, GoldJudge
from selfrag.errors import InputError
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

QA = {"id": "q", "instruction": "What is Henry Feilden's occupation?", "output": "politician",
      "dataset_name": "popqa", "answers": ["politician", "political figure"]}
ARC = {"id": "a", "dataset_name": "arc_easy", "output": "B",
       "instruction": "Given four answer candidates, A, B, C and D, choose the best answer choice."
                      "## Input:\n\nWhat melts ice?\nA: cold\nB: heat\nC: dark\nD: wind"}
CLAIM = {"id": "f", "dataset_name": "fever", "output": "true",
         "instruction": "Is the following statement correct or not? Say true if it's correct; "
                        "otherwise say false.## Input:\n\nVitamin C prevents scurvy."}


def _label(task, record, items=(QA, ARC, CLAIM)):
    out = GoldJudge(list(items)).label(task, [record])[0]
    assert out["judge"] == JUDGE_NAME and out["pred"] == out["label"] and out["reason"]
    return out["label"]


def test_relevance_is_whether_the_passage_contains_a_gold_answer():
    assert _label("relevance", {"q_id": "q", "evidence": "Feilden\nAn English politician."}) == RELEVANT
    assert _label("relevance", {"q_id": "q", "evidence": "Feilden\nAn architect."}) == IRRELEVANT
    # normalised whole-word match: "Politician," counts, "politicians" does not
    assert _label("relevance", {"q_id": "q", "evidence": "x\nPolitician, born 1818."}) == RELEVANT
    assert _label("relevance", {"q_id": "q", "evidence": "x\nmany politicians"}) == IRRELEVANT
    # a Wikipedia citation marker glued to the answer does not hide it ("politician4" otherwise)
    assert _label("relevance", {"q_id": "q", "evidence": "x\nA politician.[4] He"}) == RELEVANT


def test_support_is_whether_sentence_and_passage_share_the_answer():
    pair = {"q_id": "q", "target_output": "He was a politician.",
            "evidence": "x\nHe was a politician."}
    assert _label("groudness", pair) == FULLY_SUPPORTED
    assert _label("groudness", {**pair, "evidence": "x\nA political figure."}) == PARTIALLY_SUPPORTED
    assert _label("groudness", {**pair, "target_output": "He lived long."}) == NO_SUPPORT


def test_utility_is_answer_correctness_and_retrieve_rules():
    assert _label("utility", {"id": "q", "output": "A politician."}) == UTILITY[4]
    assert _label("utility", {"id": "q", "output": "A farmer."}) == UTILITY[0]
    assert _label("retrieval", {"id": "q"}) == RETRIEVAL
    assert _label("multi_retrieval", {"q_id": "q", "target_output": "A politician."}) == RETRIEVAL
    assert _label("multi_retrieval", {"q_id": "q", "target_output": "Nice."}) == NO_RETRIEVAL


def test_multiple_choice_uses_the_option_text():
    assert _label("relevance", {"q_id": "a", "evidence": "x\nHeat melts ice."}) == RELEVANT
    assert _label("groudness", {"q_id": "a", "target_output": "B",
                                "evidence": "x\nheat melts ice"}) == FULLY_SUPPORTED
    assert _label("utility", {"id": "a", "output": "B"}) == UTILITY[4]
    assert _label("utility", {"id": "a", "output": "C"}) == UTILITY[0]


def test_claims_are_relevant_when_the_passage_covers_them():
    assert _label("relevance", {"q_id": "f", "evidence": "x\nVitamin C prevents scurvy in sailors."}) == RELEVANT
    assert _label("relevance", {"q_id": "f", "evidence": "x\nThe moon is far."}) == IRRELEVANT
    assert _label("groudness", {"q_id": "f", "target_output": "true",
                                "evidence": "x\nVitamin C prevents scurvy."}) == FULLY_SUPPORTED
    assert _label("groudness", {"q_id": "f", "target_output": "false",
                                "evidence": "x\nVitamin C prevents scurvy."}) == NO_SUPPORT


def test_items_without_gold_answers_are_refused():
    with pytest.raises(InputError, match="line 2: field 'answers'"):
        GoldJudge([QA, {"id": "z", "dataset_name": "flan_v2", "instruction": "Hi",
                        "output": "Hello"}], "items.jsonl")
