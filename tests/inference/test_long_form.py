"""Segment-level beam search with a scripted LM: paths known by construction."""

import pytest

from selfrag.inference.long_form import (
    LongFormConfig,
    LongFormEngine,
    LongFormQuery,
    LongFormResult,
    Segment,
)
from selfrag.inference.long_form_beam import SegmentBeamSearch
from selfrag.inference.long_form_faithful import OriginalTreeSearch
from selfrag.inference.long_form_output import asqa_output, factscore_output, fix_spacing
from selfrag.inference.scoring import CritiqueWeights
from selfrag.lm.scripted import ScriptedLM, Step
from selfrag.prompts import format_evidence, format_prompt

REL = CritiqueWeights(1.0, 1.0, 0.5)
A, B = {"title": "A", "text": "alpha"}, {"title": "B", "text": "beta"}


def rel(p):
    return Step({"[Relevant]": p, "[Irrelevant]": 1 - p})


def sup(full, partial, none, chosen=None):
    return Step({"[Fully supported]": full, "[Partially supported]": partial,
                 "[No support / Contradictory]": none}, chosen)


def words(*tokens):
    return [Step({t: 1.0}) for t in tokens]


END = Step({"</s>": 1.0})
RETRIEVE = Step({"[Retrieval]": 1.0})


def scripted(table):
    """``table[(depth, title)]`` scripts the continuation after a passage: depth 1 right after
    the question, depth 2 once a segment (they all start with [Relevant]) is in the context."""
    def script(prompt):
        if "<paragraph>" not in prompt:
            return [Step({"[Retrieval]": 0.9, "[No Retrieval]": 0.1}), END]
        depth = 2 if "[Relevant]" in prompt else 1
        title = prompt.rsplit("<paragraph>", 1)[1].split("\n")[0]
        return table[(depth, title)]
    return ScriptedLM(script)


def engine(table, **config):
    config = {"mode": "always_retrieve", "weights": REL, "max_new_tokens": 20} | config
    return LongFormEngine(scripted(table), LongFormConfig(**config))


def query(question="q"):
    return LongFormQuery(format_prompt(question), [A, B], question)


TWO_STEP = {
    # depth 1: A is relevant and supported and asks for more; B is irrelevant.
    (1, "A"): [rel(0.9), *words(" Alpha is first."), sup(1.0, 0.0, 0.0), RETRIEVE],
    (1, "B"): [rel(0.2), *words(" Beta."), sup(0.0, 0.0, 1.0), RETRIEVE],
    # depth 2 (after A): B's continuation is the better one.
    (2, "A"): [rel(0.5), *words(" Again alpha."), sup(0.0, 1.0, 0.0), END],
    (2, "B"): [rel(0.8), *words(" Then beta."), sup(1.0, 0.0, 0.0), END],
}


def test_the_engine_chooses_the_search():
    assert isinstance(engine(TWO_STEP).search, SegmentBeamSearch)
    assert isinstance(engine(TWO_STEP, faithful=True).search, OriginalTreeSearch)


def test_beam_search_finds_the_best_path_and_batches_each_depth():
    eng = engine(TWO_STEP, beam_width=1, max_depth=3)
    (result,) = eng.run([query("q1")])
    assert [s.passage["title"] for s in result.segments] == ["A", "B"]
    assert [s.text for s in result.segments] == [
        "[Relevant] Alpha is first.[Fully supported]", "[Relevant] Then beta.[Fully supported]"]
    # segment scores: 0.9 + 1.0 = 1.9 and 0.8 + 1.0 = 1.8 -> path score is their mean
    assert result.segments[0].scores["final"] == pytest.approx(1.9)
    assert result.score == pytest.approx((1.9 + 1.8) / 2)
    assert eng.answer(result) == "Alpha is first. Then beta."
    # depth 2 contexts carry the first passage and segment, as in the training data
    context = (format_prompt("q1") + format_evidence(A) + "[Relevant] Alpha is first.[Fully supported]")
    assert context + format_evidence(B) in eng.lm.prompts_seen
    assert len(eng.lm.calls) == 2  # one backend call per depth


def test_all_queries_of_a_depth_share_one_call():
    eng = engine(TWO_STEP, beam_width=2, max_depth=2)
    results = eng.run([query("q1"), query("q2")])
    assert len(results) == 2 and len(eng.lm.calls) == 2
    assert len(eng.lm.calls[1]) == 2 * 2 * 2  # 2 queries x beam 2 x 2 passages


def test_a_finished_answer_competes_with_deeper_ones():
    table = {
        (1, "A"): [rel(0.95), *words(" Done."), sup(1.0, 0.0, 0.0), END],            # 1.95, ends
        (1, "B"): [rel(0.5), *words(" More"), sup(0.0, 1.0, 0.0), RETRIEVE],          # 1.0, goes on
        (2, "A"): [rel(0.6), *words(" x."), sup(0.0, 0.0, 1.0), END],                 # 0.6
        (2, "B"): [rel(0.7), *words(" y."), sup(0.0, 0.0, 1.0), END],                 # 0.7
    }
    (result,) = engine(table, beam_width=2, max_depth=3).run([query()])
    assert [s.text for s in result.segments] == ["[Relevant] Done.[Fully supported]"]
    assert result.score == pytest.approx(1.95)
    assert result.alternatives[0]["score"] == pytest.approx((1.0 + 0.7) / 2)


def test_a_confident_no_retrieval_continues_the_segment_and_a_weak_one_ends_it():
    def table(p_ret):
        step = Step({"[No Retrieval]": 1 - p_ret, "[Retrieval]": p_ret}, "[No Retrieval]")
        first = [rel(0.9), *words(" One."), step, *words(" Two."), END]
        return {(1, "A"): first, (1, "B"): first,
                (2, "A"): [rel(0.9), *words(" Three."), END], (2, "B"): [rel(0.1), END]}
    (kept,) = engine(table(0.1), threshold=0.5, beam_width=1, max_depth=2).run([query()])
    assert [s.text for s in kept.segments] == ["[Relevant] One.[No Retrieval] Two."]
    (split,) = engine(table(0.9), threshold=0.5, beam_width=1, max_depth=2).run([query()])
    assert [s.text for s in split.segments] == ["[Relevant] One.", "[Relevant] Three."]


def test_adaptive_no_retrieval_answers_in_one_segment():
    lm = ScriptedLM(lambda p: [Step({"[Retrieval]": 0.1, "[No Retrieval]": 0.9}), END]
                    if p.endswith("\n") else [*words(" Plain."), END])
    eng = LongFormEngine(lm, LongFormConfig(threshold=0.5))
    (result,) = eng.run([query()])
    assert not result.retrieved and result.retrieval_probability == pytest.approx(0.1)
    assert eng.answer(result) == "Plain." and result.segments[0].passage is None


class Searcher:
    def __init__(self):
        self.queries = []

    def search_batch(self, queries, n_docs):
        self.queries.append(list(queries))
        return [[A, B][:n_docs] for _ in queries]


def test_retrieval_during_generation_requeries_with_the_text_so_far():
    searcher = Searcher()
    lm = scripted(TWO_STEP)
    eng = LongFormEngine(lm, LongFormConfig(mode="always_retrieve", weights=REL, beam_width=1,
                                            max_depth=2, ndocs=2), retriever=searcher)
    eng.run([LongFormQuery(format_prompt("Who?"), [], "Who?")])
    assert searcher.queries == [["Who?"], ["Who? Alpha is first."]]


def test_faithful_search_reproduces_the_originals_choices():
    table = {
        (1, "A"): [rel(0.9), *words(" sa."), sup(1.0, 0.0, 0.0), Step({"[Utility:1]": 1.0}), RETRIEVE, *words(" tail")],
        (1, "B"): [rel(0.6), *words(" sb."), sup(0.0, 1.0, 0.0), RETRIEVE],
        (2, "A"): [rel(0.5), *words(" ta."), END],
        (2, "B"): [rel(0.7), *words(" tb."), END],
    }
    eng = engine(table, faithful=True, beam_width=2, max_depth=3, weights=CritiqueWeights(5.0, 5.0, 5.0))
    (result,) = eng.run([query("q")])
    # step scores ignore the weights and utility: A 0.9 + 1.0 = 1.9, B 0.6 + 0.5 = 1.1;
    # depth 2 multiplies: the best leaf is A -> B with 1.9 * 0.7.
    assert result.score == pytest.approx(1.9 * 0.7)
    assert [s.text for s in result.segments] == ["[Relevant] sa.[Fully supported][Utility:1]", "[Relevant] tb."]
    # sibling contamination: B's stored context carries A's segment, and is used at depth 2
    contaminated = format_prompt("q") + "[Relevant] sa.[Fully supported][Utility:1]" + "[Relevant] sb.[Partially supported]"
    assert contaminated + format_evidence(A) in eng.lm.prompts_seen
    # no previous paragraph in the context, unlike the default search
    assert format_prompt("q") + "[Relevant] sa.[Fully supported][Utility:1]" + format_evidence(B) in eng.lm.prompts_seen
    # the original space-joins the path after an empty root and drops one leading space
    assert factscore_output(eng, result) == " sa.  tb."


@pytest.mark.parametrize("mode", ["always_retrieve", "adaptive_retrieval"])
def test_faithful_search_retrieves_once_per_query_with_an_online_retriever(mode):
    # issue 12 item 6: with --passages/--demo_retriever the faithful search never retrieved
    table = {
        (1, "A"): [rel(0.9), *words(" sa."), sup(1.0, 0.0, 0.0), RETRIEVE],
        (1, "B"): [rel(0.6), *words(" sb."), sup(0.0, 1.0, 0.0), RETRIEVE],
        (2, "A"): [rel(0.5), *words(" ta."), END],
        (2, "B"): [rel(0.7), *words(" tb."), END],
    }
    searcher = Searcher()
    eng = LongFormEngine(scripted(table), LongFormConfig(
        mode=mode, threshold=0.5, weights=REL, max_new_tokens=20, beam_width=2, max_depth=3,
        ndocs=2, faithful=True), retriever=searcher)
    (result,) = eng.run([LongFormQuery(format_prompt("Who?"), [], "Who?")])
    assert searcher.queries == [["Who?"]]  # once, with the question, as the static passages
    assert result.retrieved and result.score == pytest.approx(1.9 * 0.7)
    assert [s.passage for s in result.segments] == [A, B]


def test_faithful_keeps_only_the_deepest_level():
    table = {
        (1, "A"): [rel(0.95), *words(" Done."), sup(1.0, 0.0, 0.0), END],
        (1, "B"): [rel(0.5), *words(" More"), sup(0.0, 1.0, 0.0), RETRIEVE],
        (2, "A"): [rel(0.1), *words(" x."), END], (2, "B"): [rel(0.2), *words(" y."), END],
    }
    (result,) = engine(table, faithful=True, beam_width=2, max_depth=3).run([query()])
    assert [s.text for s in result.segments] == ["[Relevant] More[Partially supported]", "[Irrelevant] y."]


def _result(*texts):
    passages = [{"title": f"P{i}", "text": t} for i, t in enumerate(texts, start=1)]
    return LongFormResult([Segment(t, p) for t, p in zip(texts, passages)], True), passages


def test_asqa_citations_stay_aligned_with_docs():
    eng = engine(TWO_STEP)
    result, passages = _result("[Relevant]Paris is big.[Fully supported]",
                               "[Relevant]Paris is big.[Fully supported]",
                               "[Relevant]It rains[Partially supported]", "[Irrelevant]")
    output, docs = asqa_output(eng, result)
    assert output == "Paris is big [1]. It rains [2]"
    assert docs == [passages[0], passages[2]]
    # the original numbers segments by position, so the second citation points at a dropped doc
    faithful = engine(TWO_STEP, faithful=True)
    output, docs = asqa_output(faithful, result)
    assert output == "Paris is big [1]. It rain [3]."
    assert docs == [passages[0], passages[2]]


def test_asqa_docs_are_the_given_passages_and_citations_index_them():
    # issue 12 item 7: docs were the cited passages only, so "docs: []" when nothing was cited
    eng = engine(TWO_STEP)
    given = [{"title": f"D{i}", "text": f"doc {i}"} for i in range(1, 6)]
    cited = LongFormResult([Segment("[Relevant]Paris is big.[Fully supported]", given[2]),
                            Segment("[Relevant]It rains[Partially supported]", given[0]),
                            Segment("[Relevant]Found online.", {"title": "X", "text": "x"})], True)
    output, docs = asqa_output(eng, cited, given)
    assert output == "Paris is big [3]. It rains [1] Found online [6]."
    assert docs == [*given, {"title": "X", "text": "x"}]
    plain = LongFormResult([Segment("[No Retrieval]Paris.")], False)
    assert asqa_output(eng, plain, given) == ("Paris.", given)


def test_ignore_cont_drops_unsupported_segments():
    result, _ = _result("[Relevant]Yes.[Fully supported]", "[Relevant]No.[No support / Contradictory]")
    assert engine(TWO_STEP, ignore_cont=True).answer(result) == "Yes."
    assert engine(TWO_STEP).answer(result) == "Yes. No."


def test_fix_spacing():
    assert fix_spacing("One.Two!Three? Four.") == "One. Two! Three? Four."


@pytest.mark.parametrize("field", ["beam_width", "max_depth", "max_new_tokens"])
def test_invalid_search_settings(field):
    with pytest.raises(ValueError, match=f"{field} must be at least 1"):
        LongFormConfig(**{field: 0})
    with pytest.raises(ValueError, match="ndocs"):
        LongFormConfig(ndocs=0)
