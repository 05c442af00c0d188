"""Every critique formula of the original's scorer against numbers computed by hand."""

import math

import pytest

from selfrag.inference.scoring import (
    CritiqueWeights,
    faithful_retrieval_ratio,
    mean_logprob,
    relevance_score,
    retrieval_probability,
    score_candidate,
    support_score,
    utility_score,
)
from selfrag.lm.base import GenerationRequest
from selfrag.lm.scripted import ScriptedLM, Step
from selfrag.tokens import reflection_token_ids

UTILITIES = [f"[Utility:{i}]" for i in range(1, 6)]


def generate(steps):
    lm = ScriptedLM(lambda prompt: steps)
    ids = reflection_token_ids(lm.tokenizer)
    generation = lm.generate(["p"], GenerationRequest(50, control_ids=tuple(ids.all_ids)))[0]
    return generation, ids


ANSWER = [
    Step({"[Relevant]": 0.6, "[Irrelevant]": 0.2}),                      # chosen p = 0.6
    Step({" Paris": 0.9}),                                               # chosen p = 0.9
    Step({"[Fully supported]": 0.2, "[Partially supported]": 0.2,
          "[No support / Contradictory]": 0.1}),                         # chosen p = 0.2
    Step(dict(zip(UTILITIES, [0.05, 0.05, 0.1, 0.1, 0.2])), "[Utility:5]"),  # chosen p = 0.2
    Step({"</s>": 0.5}),                                                 # chosen p = 0.5
]


def test_relevance_is_normalised_within_isrel_at_the_first_position():
    generation, _ = generate(ANSWER)
    assert relevance_score(generation) == pytest.approx(0.6 / (0.6 + 0.2))  # 0.75


def test_support_at_the_first_issup_token():
    generation, ids = generate(ANSWER)
    # S = 0.5; full 0.2/0.5 = 0.4, partial 0.2/0.5 = 0.4 -> 0.4 + 0.5 * 0.4 = 0.6
    assert support_score(generation, ids) == pytest.approx(0.6)


def test_utility_weights_minus_one_to_one():
    generation, ids = generate(ANSWER)
    # S = 0.5; (-1*0.05 - 0.5*0.05 + 0*0.1 + 0.5*0.1 + 1*0.2) / 0.5 = 0.175 / 0.5 = 0.35
    assert utility_score(generation, ids) == pytest.approx(0.35)


def test_no_critique_token_generated_scores_zero():
    generation, ids = generate([Step({"[Relevant]": 0.5, "[Irrelevant]": 0.5}, "[Relevant]"),
                                Step({" yes": 1.0}), Step({"</s>": 1.0})])
    assert support_score(generation, ids) == 0.0
    assert utility_score(generation, ids) == 0.0
    assert relevance_score(generation) == pytest.approx(0.5)


def test_sequence_score_is_the_mean_token_logprob():
    generation, _ = generate(ANSWER)
    expected = (math.log(0.6) + math.log(0.9) + math.log(0.2) + math.log(0.2) + math.log(0.5)) / 5
    assert mean_logprob(generation) == pytest.approx(expected)


def test_final_score_combines_weights_and_switches():
    generation, ids = generate(ANSWER)
    seq = math.exp((math.log(0.6) + math.log(0.9) + math.log(0.2) + math.log(0.2) + math.log(0.5)) / 5)
    paper = score_candidate(generation, ids, CritiqueWeights(1.0, 1.0, 0.5, use_seqscore=True))
    assert paper.final == pytest.approx(seq + 0.75 + 0.6 + 0.5 * 0.35)
    plain = score_candidate(generation, ids, CritiqueWeights(2.0, 1.0, 1.0, use_support=False,
                                                             use_utility=False))
    assert (plain.support, plain.utility) == (0.0, 0.0)
    assert plain.final == pytest.approx(2.0 * 0.75)


def test_retrieval_probability_versus_the_originals_logprob_ratio():
    generation, _ = generate([Step({"[Retrieval]": 0.3, "[No Retrieval]": 0.1})])
    row = generation.control_logprobs[0]
    assert retrieval_probability(row) == pytest.approx(0.75)
    assert faithful_retrieval_ratio(row) == pytest.approx(
        math.log(0.3) / (math.log(0.3) + math.log(0.1)))  # 0.3433...


def test_faithful_ratio_reads_log_probs_below_minus_100_unclamped():
    # issue 12 item 8: the original overwrites its -100 default with the real log-prob
    generation, _ = generate([Step({"[Retrieval]": 1e-60, "[No Retrieval]": 1e-50})])
    ratio = faithful_retrieval_ratio(generation.control_logprobs[0])
    assert ratio == pytest.approx(60 / 110)  # ln(1e-60) / (ln(1e-60) + ln(1e-50)) > 0.5
    assert ratio > 0.5


def test_faithful_ratio_is_nan_when_retrieval_has_probability_zero():
    generation, _ = generate([Step({"[No Retrieval]": 0.5, "x": 0.5})])
    ratio = faithful_retrieval_ratio(generation.control_logprobs[0])  # -inf / -inf
    assert math.isnan(ratio)
