"""Step 11 (assembly) case by case, the paper rule vs the original's, and the validator."""

from __future__ import annotations

import json
import random

import pytest
from gen_helpers import RELEASED

from selfrag.data_creation.generator.assembly import Assembler, AssemblyInputs
from selfrag.data_creation.generator.selection import Candidate, select_original, select_paper
from selfrag.data_creation.generator.validate import validate_instance, validate_output
from selfrag.tokens import FULLY_SUPPORTED, IRRELEVANT, NO_SUPPORT, PARTIALLY_SUPPORTED, RELEVANT

FULLY, PARTIAL, NOSUP = FULLY_SUPPORTED, PARTIALLY_SUPPORTED, NO_SUPPORT


def _inputs(output="Paris is the capital of France. It lies on the Seine river.", initial="[Retrieval]",
            utility="[Utility:5]", multi=None, pairs=(), dataset="popqa", skipped=None):
    """One item "a" whose sentences are split at '. ' and labelled as given.

    ``pairs``: (sent_idx, p_idx, isrel pred, issup pred or None, score).
    """
    texts = [t if t.endswith(".") else t + "." for t in output.rstrip(".").split(". ")]
    item = {"instruction": "Q", "output": output, "input": "", "id": "a", "dataset_name": dataset}
    relevance = [{"q_id": "a", "sent_idx": k, "p_idx": p, "pred": rel, "title": f"T{p}",
                  "text": f"passage {p}", "score": score} for k, p, rel, _, score in pairs]
    groundness = [{"q_id": "a", "sent_idx": k, "p_idx": p, "pred": sup}
                  for k, p, _, sup, _ in pairs if sup is not None]
    return AssemblyInputs(
        items=[item], initial={"a": {"pred": initial}}, utility={"a": {"pred": utility}},
        splitted={"a": {"q_id": "a", "splitted_output": texts,
                        "separators": [" "] * (len(texts) - 1) + [""],
                        "skipped": {str(k): k in (skipped or ()) for k in range(len(texts))}}},
        multi={f"a#{k}": {"q_id": "a", "sent_idx": k, "pred": pred}
               for k, pred in (multi or {}).items()},
        relevance=relevance, groundness=groundness)


def _one(inputs, **kwargs):
    assembler = Assembler(inputs, **kwargs)
    records = assembler.run()
    return (records[0]["output"] if records else None), assembler.report


def test_relevant_fully_supported_passage_with_the_highest_score_is_chosen():
    pairs = [(0, 0, "[Relevant]", "[Partially supported]", 9.0),
             (0, 1, "[Relevant]", "[Fully supported]", 1.0),
             (0, 2, "[Relevant]", "[Fully supported]", 2.0),
             (1, 0, "[Irrelevant]", None, 1.0)]
    output, _ = _one(_inputs(multi={1: "[No Retrieval]"}, pairs=pairs))
    assert output == ("[Retrieval]<paragraph>T2\npassage 2</paragraph>[Relevant]Paris is the "
                      "capital of France.[Fully supported] [No Retrieval]It lies on the Seine "
                      "river.[Utility:5]")


def test_partially_supported_when_nothing_is_fully_supported():
    pairs = [(0, 0, "[Irrelevant]", None, 5.0), (0, 1, "[Relevant]", "[Partially supported]", 1.0)]
    output, _ = _one(_inputs(output="Paris is the capital.", pairs=pairs))
    assert output == ("[Retrieval]<paragraph>T1\npassage 1</paragraph>[Relevant]Paris is the "
                      "capital.[Partially supported][Utility:5]")


def test_irrelevant_only_gives_an_irrelevant_passage_without_issup():
    pairs = [(0, 0, "[Irrelevant]", None, 5.0), (0, 1, "[Irrelevant]", None, 1.0)]
    output, _ = _one(_inputs(output="Paris is the capital.", pairs=pairs), seed=3)
    assert output.startswith("[Retrieval]<paragraph>T")
    assert output.endswith("</paragraph>[Irrelevant]Paris is the capital.[Utility:5]")


def test_no_retrieval_item_keeps_its_output_whole():
    output, _ = _one(_inputs(initial="[No Retrieval]", utility="[Utility:3]"))
    assert output == ("[No Retrieval]Paris is the capital of France. It lies on the Seine "
                      "river.[Utility:3]")


def test_continue_to_use_evidence_after_a_passage():
    pairs = [(0, 0, "[Relevant]", "[Fully supported]", 1.0)]
    output, _ = _one(_inputs(multi={1: "[Continue to Use Evidence]"}, pairs=pairs))
    assert "[Fully supported] [Continue to Use Evidence]It lies on the Seine river.[Utility:5]" in output
    assert validate_output(output, strict=True) == []


def test_continue_before_any_passage_becomes_retrieval():
    inputs = _inputs(output="Yes. Paris is the capital of France today. Ok.",
                     multi={1: "[Continue to Use Evidence]"},
                     pairs=[(1, 0, "[Relevant]", "[Fully supported]", 1.0)], skipped=(0, 2))
    output, report = _one(inputs)
    assert output == ("Yes. [Retrieval]<paragraph>T0\npassage 0</paragraph>[Relevant]Paris is "
                      "the capital of France today.[Fully supported] Ok.[Utility:5]")
    assert sum(report.notes.values()) == 1
    assert validate_output(output, strict=True) == []


def test_utility_token_comes_from_the_prediction_and_ends_the_output():
    output, _ = _one(_inputs(initial="[No Retrieval]", utility="Perceived utility: 4"))
    assert output.endswith("[Utility:4]") and output.count("[Utility:") == 1


def test_refutes_becomes_false():
    output, _ = _one(_inputs(output="REFUTES", initial="[No Retrieval]", dataset="fever"))
    assert output == "[No Retrieval]false[Utility:5]"


def test_short_sentences_are_copied_without_tokens():
    # sentence 1 is the first labelled one, but not sentence 0: it has its own decision
    inputs = _inputs(output="Yes. Paris is the capital of France today. Ok.",
                     multi={1: "[Retrieval]"}, pairs=[(1, 0, "[Relevant]", "[Fully supported]", 1.0)],
                     skipped=(0, 2))
    output, _ = _one(inputs)
    assert output.startswith("Yes. [Retrieval]<paragraph>")
    assert output.endswith("[Fully supported] Ok.[Utility:5]")
    assert validate_output(output) == []


def test_unparseable_predictions_are_counted_and_the_item_dropped():
    output, report = _one(_inputs(utility="I think it is good"))
    assert output is None
    assert report.unparseable["utility"] == 1 and report.dropped["unparseable prediction"] == 1
    pairs = [(0, 0, "dunno", None, 1.0)]
    output, report = _one(_inputs(output="Paris is the capital.", pairs=pairs))
    assert output is None and report.unparseable["relevance"] == 1
    assert report.dropped["no usable passage for a retrieving sentence"] == 1


def test_faithful_fallbacks_turn_unreadable_predictions_into_labels():
    output, report = _one(_inputs(initial="maybe", utility="[Utility:5]", multi={1: "??"},
                                  pairs=[(0, 0, "[Irrelevant]", None, 1.0)]), faithful=True)
    # "maybe" -> [No Retrieval] for sentence 0; sentences joined without the space
    assert output == ("[No Retrieval]Paris is the capital of France.[No Retrieval]It lies on "
                      "the Seine river.[Utility:5]")
    assert not report.unparseable


def test_removing_tokens_gives_the_output_back_in_default_mode():
    pairs = [(0, 0, "[Relevant]", "[Fully supported]", 1.0), (1, 0, "[Irrelevant]", None, 1.0)]
    inputs = _inputs(multi={1: "[Retrieval]"}, pairs=pairs)
    output, _ = _one(inputs)
    from gen_helpers import strip_reflection

    assert strip_reflection(output) == inputs.items[0]["output"]


def _candidates():
    return [Candidate(0, "T0", "relevant", 1.0, RELEVANT, NOSUP),
            Candidate(1, "T1", "irrelevant", 0.5, IRRELEVANT),
            Candidate(2, "T2", "irrelevant", 0.2, IRRELEVANT)]


def test_paper_rule_draws_from_irrelevant_or_unsupported_only_when_nothing_is_supported():
    picks = {select_paper(_candidates(), random.Random(s)).passage.p_idx for s in range(30)}
    assert picks == {0, 1, 2}
    with_partial = _candidates() + [Candidate(3, "T3", "p", 0.1, RELEVANT, PARTIAL)]
    assert select_paper(with_partial, random.Random(0)).passage.p_idx == 3


def test_original_index_bug_can_pick_a_relevant_passage_and_the_fix_cannot():
    # wow: relevant + no support counts as irrelevant; the buggy index is a position
    # below len(irrelevant) = 3, i.e. passages 0..2.
    cands = [Candidate(0, "T0", "r", 1.0, RELEVANT, FULLY)] + _candidates()[1:] + [
        Candidate(3, "T3", "i", 0.1, IRRELEVANT)]
    buggy = {select_original(cands, "fever", random.Random(s), index_bug=True).passage.p_idx
             for s in range(40)}
    fixed = {select_original(cands, "fever", random.Random(s), index_bug=False).passage.p_idx
             for s in range(40)}
    assert 0 in buggy  # the relevant, fully supported passage, labelled [Irrelevant]
    assert fixed == {1, 2, 3}


def test_original_rule_probabilities_with_a_fixed_seed():
    partial_only = [Candidate(0, "T0", "p", 1.0, RELEVANT, PARTIAL)]
    taken = [select_original(partial_only, "popqa", random.Random(s)) is not None
             for s in range(1000)]
    assert 0.65 < sum(taken) / 1000 < 0.75  # kept with probability 0.7, else dropped
    again = [select_original(partial_only, "popqa", random.Random(s)) is not None
             for s in range(1000)]
    assert taken == again  # seeded


def test_faithful_keeps_no_retrieval_items_with_probability_0_4_seeded():
    kept = sum(_one(_inputs(initial="[No Retrieval]"), faithful=True, seed=s)[0] is not None
               for s in range(500))
    assert 150 < kept < 250
    assert all(_one(_inputs(initial="[No Retrieval]"), seed=s)[0] is not None for s in range(20))


def test_released_examples_pass_the_validator():
    records = [json.loads(line) for line in RELEASED.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 50
    assert {r["id"]: validate_instance(r) for r in records if validate_instance(r)} == {}


@pytest.mark.parametrize("output, problem", [
    ("[Retrieval]<paragraph>T\nx</paragraph>[Relevant]S.[Utility:5]", "without an IsSup"),
    ("[Retrieval]<paragraph>T\nx[Relevant]S.[Fully supported][Utility:5]", "not closed"),
    ("[No Retrieval]S.", "does not end with"),
    ("[No Retrieval]S.[Utility:5][Utility:4]", "more than one"),
    ("[No Retrieval]S.[Fully supported][Utility:5]", "out of place"),
    ("[Retrieval]S.[Utility:5]", "not followed by <paragraph>"),
    ("[Retrieval]<paragraph>T\nx</paragraph>S.[Utility:5]", "[Relevant] or [Irrelevant]"),
    ("[Retrieval]<paragraph>T\nx</paragraph>[Irrelevant]S.[Partially supported][Utility:5]",
     "out of place"),
])
def test_validator_rejects_broken_outputs(output, problem):
    assert any(problem in p for p in validate_output(output))
