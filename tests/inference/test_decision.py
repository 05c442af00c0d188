"""The retrieval decision, written once: modes, the paper's rule and the original's two rules."""

import math

import pytest

from selfrag.inference.decision import (
    ORIGINAL_LONG_FORM,
    ORIGINAL_SHORT_FORM,
    PAPER,
    DecisionPolicy,
    can_retrieve,
    decide,
)
from selfrag.inference.query import Query
from selfrag.lm.scripted import ScriptedLM, Step
from selfrag.tokens import reflection_token_ids

PASSAGES = [{"title": "A", "text": "alpha"}]


def run(script, policy, queries=None, retriever=None):
    lm = ScriptedLM(lambda prompt: script[prompt])
    queries = queries or [Query(p, PASSAGES) for p in script]
    return decide(queries, policy, lm, reflection_token_ids(lm.tokenizer), retriever), lm


def first(p_ret, p_no, chosen=None, *rest):
    return [Step({"[Retrieval]": p_ret, "[No Retrieval]": p_no}, chosen), *rest,
            Step({"</s>": 1.0})]


def test_a_query_can_retrieve_with_passages_or_a_retriever_and_a_question():
    assert can_retrieve(Query("p", PASSAGES), None)
    assert not can_retrieve(Query("p", (), "who?"), None)
    assert can_retrieve(Query("p", (), "who?"), object())
    assert not can_retrieve(Query("p", (), ""), object())


def test_always_and_never_retrieve_make_no_backend_call():
    queries = [Query("a", PASSAGES), Query("b")]
    found, lm = run({}, DecisionPolicy("always_retrieve"), queries)
    assert found.retrieve == [True, False] and found.probabilities == [None, None]
    assert lm.calls == []
    found, lm = run({}, DecisionPolicy("no_retrieval", 0.2), queries)
    assert found.retrieve == [False, False] and lm.calls == []


def test_paper_rule_compares_the_probability_ratio_in_one_step():
    # a: 0.3 / (0.3 + 0.1) = 0.75 > 0.5;  b: 0.2 / (0.2 + 0.6) = 0.25
    script = {"a": first(0.3, 0.1), "b": first(0.2, 0.6)}
    found, lm = run(script, DecisionPolicy("adaptive_retrieval", 0.5, PAPER))
    assert found.retrieve == [True, False]
    assert found.probabilities == pytest.approx([0.75, 0.25])
    assert found.initial == [None, None]
    assert len(lm.calls) == 1 and lm.requests[0].max_new_tokens == 1


def test_paper_rule_without_threshold_follows_the_greedy_first_token():
    script = {"a": first(0.3, 0.1), "b": first(0.3, 0.1, "[No Retrieval]")}
    found, _ = run(script, DecisionPolicy("adaptive_retrieval", None, PAPER))
    assert found.retrieve == [True, False]


def test_original_short_form_rule_is_the_logprob_ratio_and_keeps_the_first_text():
    # ln 0.01 / (ln 0.01 + ln 0.9) = 0.978 > 0.2, although p(Ret) is tiny
    script = {"a": first(0.01, 0.9, "[No Retrieval]")}
    policy = DecisionPolicy("adaptive_retrieval", 0.2, ORIGINAL_SHORT_FORM, first_pass_tokens=7)
    found, lm = run(script, policy)
    expected = math.log(0.01) / (math.log(0.01) + math.log(0.9))
    assert expected > 0.2 and found.retrieve == [True]
    assert found.initial == ["[No Retrieval]"] and lm.requests[0].max_new_tokens == 7


def test_original_short_form_rule_without_threshold_looks_anywhere_and_runs_in_no_retrieval():
    script = {"a": [Step({" Let": 1.0}), *first(0.6, 0.4)]}
    found, _ = run(script, DecisionPolicy("adaptive_retrieval", None, ORIGINAL_SHORT_FORM, 5))
    assert found.retrieve == [True]
    found, lm = run(script, DecisionPolicy("no_retrieval", None, ORIGINAL_SHORT_FORM, 5))
    assert found.retrieve == [False] and found.initial == [" Let[Retrieval]"] and len(lm.calls) == 1


def test_original_long_form_rule_needs_retrieval_before_a_blank_line_and_a_threshold():
    # every first position: 0.4 / (0.4 + 0.1) = 0.8 > 0.5
    opening = Step({" x": 0.5, "[Retrieval]": 0.4, "[No Retrieval]": 0.1}, " x")
    script = {"before": [opening, *first(0.9, 0.1)],
              "after": [opening, Step({"\n\n": 1.0}), *first(0.9, 0.1)],
              "unsure": first(0.3, 0.7, "[Retrieval]")}  # asks, but 0.3 is not above 0.5
    found, lm = run(script, DecisionPolicy("adaptive_retrieval", 0.5, ORIGINAL_LONG_FORM, 25))
    assert found.probabilities == pytest.approx([0.8, 0.8, 0.3])
    assert found.retrieve == [True, False, False]
    assert lm.requests[0].max_new_tokens == 25
    found, _ = run(script, DecisionPolicy("adaptive_retrieval", None, ORIGINAL_LONG_FORM, 25))
    assert found.retrieve == [False, False, False]


def test_a_query_that_cannot_retrieve_never_does():
    script = {"a": first(0.9, 0.1)}
    found, _ = run(script, DecisionPolicy("adaptive_retrieval", 0.2), [Query("a")])
    assert found.retrieve == [False] and found.probabilities == pytest.approx([0.9])


def test_unknown_mode_or_rule():
    with pytest.raises(ValueError, match="mode"):
        DecisionPolicy("sometimes")
    with pytest.raises(ValueError, match="rule"):
        DecisionPolicy(rule="mine")
