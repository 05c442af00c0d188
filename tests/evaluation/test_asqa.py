"""ASQA metrics on hand-made cases."""

import pytest

from selfrag.evaluation.asqa import asqa_rouge_l, rouge_l, str_em


def test_str_em_counts_answered_disambiguations():
    pairs = [{"short_answers": ["Rupert Grint"]}, {"short_answers": ["James Phelps", "J. Phelps"]},
             {"short_answers": ["Chris Rankin"]}]
    assert str_em("Ron was played by rupert grint; Fred by James Phelps.", pairs) == pytest.approx(2 / 3)
    assert str_em("anything", []) == 0.0


def test_rouge_l_by_longest_common_subsequence():
    # pred tokens: the cat sat on mat (5); ref: the cat is on the mat (6); LCS "the cat on mat" = 4
    assert rouge_l("The cat sat on mat.", "the cat is on the mat") == pytest.approx(2 * (4 / 5) * (4 / 6) / (4 / 5 + 4 / 6))
    assert rouge_l("", "x") == 0.0
    assert asqa_rouge_l("a b", [{"long_answer": "a b"}, {"long_answer": "c"}]) == pytest.approx(1.0)
