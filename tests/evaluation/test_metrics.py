"""Metrics on hand-made cases (after the original ``retrieval_lm/metrics.py``)."""

import pytest

from selfrag.evaluation.metrics import (
    accuracy,
    exact_match,
    f1,
    get_metric,
    match,
    normalize_answer,
)


def test_normalisation_is_squad_style():
    assert normalize_answer("The  Eiffel-Tower, in Paris!") == "eiffeltower in paris"
    assert normalize_answer("An apple a day") == "apple day"


def test_match_is_a_case_sensitive_substring_of_any_gold():
    assert match("He was a politician.", ["politician", "political leader"]) == 1.0
    assert match("He was a Politician.", ["politician"]) == 0.0
    assert match("answer: B", ["B"]) == 1.0
    assert match("", ["x"]) == 0.0


def test_accuracy_compares_with_the_first_gold():
    assert accuracy("True", ["true"]) == 1.0
    assert accuracy("false", ["true", "false"]) == 0.0
    assert accuracy("B", []) == 0.0


def test_exact_match_and_f1():
    assert exact_match("the Paris", ["Paris", "London"]) == 1.0
    assert exact_match("Paris France", ["Paris"]) == 0.0
    # pred {paris, france}, gold {paris}: precision 1/2, recall 1 -> F1 2/3
    assert f1("Paris France", ["Paris", "Lyon"]) == pytest.approx(2 / 3)
    assert f1("nothing", ["Paris"]) == 0.0


def test_unknown_metric():
    with pytest.raises(ValueError, match="unknown metric"):
        get_metric("bleu")
