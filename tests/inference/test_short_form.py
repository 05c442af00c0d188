"""The batched short-form engine, driven by a scripted LM."""

import pytest

from selfrag.inference.scoring import CritiqueWeights
from selfrag.inference.short_form import ShortFormConfig, ShortFormEngine, ShortFormQuery
from selfrag.lm.scripted import ScriptedLM, Step
from selfrag.prompts import format_prompt

PASSAGES = [{"title": "A", "text": "alpha"}, {"title": "B", "text": "beta"}]
REL_ONLY = CritiqueWeights(1.0, 1.0, 1.0, use_support=False, use_utility=False)


def decision(p_ret, p_no, first=None):
    return [Step({"[Retrieval]": p_ret, "[No Retrieval]": p_no}, first), Step({"</s>": 1.0})]


def make_lm(decisions, answers):
    """``decisions[question]`` scripts the plain prompt; ``answers[(question, title)]`` the
    continuation after a passage ("" for the [No Retrieval] continuation)."""
    def script(prompt):
        question = prompt.split("\n")[1]
        if prompt.endswith("[No Retrieval]"):
            return answers[(question, "")]
        if "</paragraph>" in prompt:
            title = prompt.split("<paragraph>")[1].split("\n")[0]
            return answers[(question, title)]
        return decisions[question]
    return ScriptedLM(script)


def answer(p_rel, text, p_text=1.0):
    return [Step({"[Relevant]": p_rel, "[Irrelevant]": 1 - p_rel}), Step({text: p_text}),
            Step({"</s>": 1.0})]


def queries(*questions):
    return [ShortFormQuery(format_prompt(q), PASSAGES) for q in questions]


ANSWERS = {
    ("q1", "A"): answer(0.2, " wrong"), ("q1", "B"): answer(0.9, " right"),
    ("q2", "A"): answer(0.7, " a2"), ("q2", "B"): answer(0.6, " b2"),
    ("q1", ""): [Step({" plain1": 1.0}), Step({"</s>": 1.0})],
    ("q2", ""): [Step({" plain2": 1.0}), Step({"</s>": 1.0})],
}
# q1: p(Ret)=0.3, p(NoRet)=0.1 -> 0.75;  q2: p(Ret)=0.01, p(NoRet)=0.9 -> 0.011
DECISIONS = {"q1": decision(0.3, 0.1), "q2": decision(0.01, 0.9)}


def run(config, decisions=DECISIONS, answers=ANSWERS, questions=("q1", "q2")):
    lm = make_lm(decisions, answers)
    return ShortFormEngine(lm, config).run(queries(*questions)), lm


def test_adaptive_threshold_uses_the_probability_ratio_and_two_batched_calls():
    results, lm = run(ShortFormConfig(threshold=0.2, weights=REL_ONLY))
    assert [r.retrieved for r in results] == [True, False]
    assert results[0].retrieval_probability == pytest.approx(0.75)
    assert results[1].retrieval_probability == pytest.approx(0.01 / 0.91)
    assert results[0].prediction == " right"  # relevance 0.9 beats 0.2
    assert results[1].prediction == " plain2"
    assert len(lm.calls) == 2  # one decision pass, one pass for all continuations
    assert lm.requests[0].max_new_tokens == 1
    assert len(lm.calls[1]) == 3  # 2 passages of q1 + the [No Retrieval] prompt of q2


def test_faithful_threshold_is_the_logprob_ratio():
    # q2: ln 0.01 / (ln 0.01 + ln 0.9) = 0.978 > 0.2: the original retrieves where the model
    # is confident it should not.
    results, lm = run(ShortFormConfig(threshold=0.2, weights=REL_ONLY, faithful=True,
                                      max_new_tokens=7))
    assert [r.retrieved for r in results] == [True, True]
    assert lm.requests[0].max_new_tokens == 7  # the original's full initial generation


def test_without_threshold_the_models_greedy_first_token_decides():
    decisions = {"q1": decision(0.3, 0.1), "q2": decision(0.2, 0.1, first="[No Retrieval]")}
    results, _ = run(ShortFormConfig(threshold=None, weights=REL_ONLY), decisions)
    assert [r.retrieved for r in results] == [True, False]


def test_faithful_without_threshold_looks_for_retrieval_anywhere_in_the_first_generation():
    decisions = {
        "q1": [Step({" Let": 1.0}), Step({"[Retrieval]": 0.6, "[No Retrieval]": 0.4}), Step({"</s>": 1.0})],
        "q2": decision(0.2, 0.1, first="[No Retrieval]"),
    }
    results, _ = run(ShortFormConfig(threshold=None, weights=REL_ONLY, faithful=True), decisions)
    assert [r.retrieved for r in results] == [True, False]
    assert results[0].no_retrieval == " Let[Retrieval]"


def test_always_and_never_retrieve_make_a_single_call():
    results, lm = run(ShortFormConfig(mode="always_retrieve", weights=REL_ONLY))
    assert [r.retrieved for r in results] == [True, True] and len(lm.calls) == 1
    assert results[1].prediction == " a2"
    results, lm = run(ShortFormConfig(mode="no_retrieval", weights=REL_ONLY))
    assert [r.prediction for r in results] == [" plain1", " plain2"] and len(lm.calls) == 1


@pytest.mark.parametrize("p_ret, p_no, retrieves", [(1e-60, 1e-50, True), (0.0, 0.5, False)])
def test_faithful_threshold_uses_unclamped_log_probs_and_nan_means_no_retrieval(p_ret, p_no,
                                                                                 retrieves):
    # issue 12 item 8: ratio 60/110 > 0.5 retrieves (the -100 clamp gave 0.5); -inf/-inf is nan
    decisions = {"q1": decision(p_ret, p_no, "[No Retrieval]")}
    config = ShortFormConfig(threshold=0.5, weights=REL_ONLY, faithful=True)
    (result,), _ = run(config, decisions, questions=("q1",))
    assert result.retrieved is retrieves


def test_always_retrieve_with_a_single_passage():
    lm = make_lm(DECISIONS, ANSWERS)
    query = ShortFormQuery(format_prompt("q1"), PASSAGES[1:])
    (result,) = ShortFormEngine(lm, ShortFormConfig(mode="always_retrieve")).run([query])
    assert result.prediction == " right" and len(result.candidates) == 1


def test_closed_set_pools_scores_per_answer():
    answers = {("q1", "A"): answer(0.9, "true"), ("q1", "B"): answer(0.5, "True"),
               ("q1", "C"): answer(0.3, "false"), ("q1", "D"): answer(0.9, "false")}
    passages = [{"title": t, "text": t} for t in "ABCD"]
    lm = make_lm({}, answers)
    query = [ShortFormQuery(format_prompt("q1"), passages)]
    config = dict(mode="always_retrieve", task="fever", weights=REL_ONLY)
    # default: true = 0.9 + 0.5 = 1.4 beats false = 0.3 + 0.9 = 1.2
    (fixed,) = ShortFormEngine(lm, ShortFormConfig(**config)).run(query)
    assert fixed.prediction == "true"
    assert fixed.option_scores == pytest.approx({"true": 1.4, "false": 1.2})
    # faithful: verbatim strings, so "false" (1.2) beats "true" (0.9) and "True" (0.5)
    (faithful,) = ShortFormEngine(lm, ShortFormConfig(faithful=True, **config)).run(query)
    assert faithful.prediction == "false"


@pytest.mark.parametrize("task", ["fever", "pubhealth"])
def test_pubhealth_is_the_closed_set_fever_task(task):
    # issue 12 item 3: true 0.6 + 0.6 = 1.2 beats false 0.9 when scores are pooled per answer
    answers = {("q1", "A"): answer(0.6, "true"), ("q1", "B"): answer(0.6, "true"),
               ("q1", "C"): answer(0.9, "false")}
    passages = [{"title": t, "text": t} for t in "ABC"]
    config = ShortFormConfig(mode="always_retrieve", task=task, weights=REL_ONLY)
    assert config.task == "fever"
    (result,) = ShortFormEngine(make_lm({}, answers), config).run(
        [ShortFormQuery(format_prompt("q1"), passages)])
    assert result.prediction == "true"
    assert result.option_scores == pytest.approx({"true": 1.2, "false": 0.9})


def test_answers_lose_every_control_token_unless_faithful():
    answers = {("q1", "A"): [Step({"[Relevant]": 1.0}), Step({" yes": 1.0}),
                             Step({"[Continue to Use Evidence]": 1.0}), Step({"[Utility:5]": 1.0}),
                             Step({"</s>": 1.0})]}
    lm = make_lm({}, answers)
    query = [ShortFormQuery(format_prompt("q1"), PASSAGES[:1])]
    (fixed,) = ShortFormEngine(lm, ShortFormConfig(mode="always_retrieve")).run(query)
    assert fixed.prediction == " yes"
    (raw,) = ShortFormEngine(lm, ShortFormConfig(mode="always_retrieve", faithful=True)).run(query)
    assert raw.prediction == "[Relevant] yes[Continue to Use Evidence][Utility:5]"


def test_the_final_answer_is_the_prediction_cleaned_as_the_original_main():
    answers = {("q1", "A"): answer(0.9, " SUPPORTS"), ("q1", "B"): answer(0.2, " #x"),
               ("q1", ""): [Step({" :Paris ": 1.0}), Step({"</s>": 1.0})]}
    lm = make_lm(DECISIONS, answers)
    (label,) = ShortFormEngine(lm, ShortFormConfig(mode="always_retrieve")).run(queries("q1"))
    assert label.prediction == " SUPPORTS" and label.answer == "true"
    (plain,) = ShortFormEngine(lm, ShortFormConfig(mode="no_retrieval")).run(queries("q1"))
    assert plain.answer == "Paris"  # trimmed, then the leading ":" dropped
    (raw,) = ShortFormEngine(lm, ShortFormConfig(mode="no_retrieval", faithful=True,
                                                 max_new_tokens=2)).run(queries("q1"))
    assert raw.answer == " :Paris "  # faithful: no trim, so the ":" is not leading


def test_a_query_without_passages_never_retrieves():
    lm = make_lm(DECISIONS, ANSWERS)
    (result,) = ShortFormEngine(lm, ShortFormConfig(threshold=0.2)).run(
        [ShortFormQuery(format_prompt("q1"), [])])
    assert not result.retrieved and result.prediction == " plain1"


class FakeRetriever:
    def __init__(self):
        self.searched = []

    def search_batch(self, queries, n_docs):
        self.searched.append(list(queries))
        return [[{"title": t, "text": f"{q} {t}"} for t in "AB"[:n_docs]] for q in queries]


def test_online_retrieval_searches_only_for_queries_that_retrieve():
    retriever = FakeRetriever()
    lm = make_lm(DECISIONS, ANSWERS)
    queries = [ShortFormQuery(format_prompt(q), [], question=q) for q in ("q1", "q2")]
    engine = ShortFormEngine(lm, ShortFormConfig(threshold=0.2, weights=REL_ONLY),
                             retriever=retriever, n_docs=2)
    results = engine.run(queries)
    assert retriever.searched == [["q1"]]  # q2 decided not to retrieve: no search at all
    assert [r.retrieved for r in results] == [True, False]
    assert results[0].prediction == " right"
    assert [c.ctx["text"] for c in results[0].candidates] == ["q1 A", "q1 B"]
