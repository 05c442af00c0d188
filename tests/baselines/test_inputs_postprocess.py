"""Baseline inputs and post-processing (as the original ``run_baseline_lm.py``): golds,
instructions, prompts, passages."""

import json

import pytest

from selfrag.baselines.inputs import (
    build_prompt, check_prompt_name, compose_instruction, format_paragraph, golds_of,
    load_baseline_examples,
)
from selfrag.baselines.postprocess import (
    applies_to_item, baseline_metric, cut_output, postprocess_closed,
)
from selfrag.errors import InputError, SelfRagError
from selfrag.prompts import TASK_INST


def write_jsonl(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


@pytest.mark.parametrize("item, golds", [
    ({"golds": ["g"], "output": "o"}, ["g"]),
    ({"output": "o"}, ["o"]),
    ({"golds": ["g"], "answers": ["a1", "a2"]}, ["a1", "a2"]),
    ({"answers": ["a"], "possible_answers": "['p1', 'p2']"}, ["p1", "p2"]),
    ({"answers": ["a"], "possible_answers": "['p']", "answerKey": "B"}, ["B"]),
    ({"question": "q"}, []),
])
def test_gold_precedence_later_fields_override_earlier_ones(item, golds):
    assert golds_of("f", 1, item) == golds


def test_possible_answers_that_is_not_a_literal_is_located():
    with pytest.raises(InputError, match=r"f, line 3: field 'possible_answers'"):
        golds_of("f", 3, {"possible_answers": "[oops"})


def test_instruction_prefix_and_arc_choices():
    choices = {"label": ["A", "B"], "text": ["x", "y"]}
    assert compose_instruction("Is it?", "fever", None, None, False) == (
        TASK_INST["fever"] + "\n\n### Input:\nIs it?")
    assert compose_instruction("Q", "arc_c", None, choices, False).endswith("### Input:\nQ\nA: x\nB: y")
    assert compose_instruction("Q", "arc_c", None, choices, True).endswith("### Input:\nQ")
    assert compose_instruction("Q", "qa", "Answer.", None, False) == "Answer.\n\n### Input:\nQ"
    assert compose_instruction("Q", "qa", None, None, False) == "Q"


def test_prompt_names_unknown_switched_and_mismatched():
    with pytest.raises(SelfRagError, match="unknown 'nope'.*llama_chat_prompt"):
        check_prompt_name("nope", False)
    assert check_prompt_name("prompt_no_input", True) == "prompt_no_input_retrieval"
    assert check_prompt_name("prompt_no_input", True, faithful=True) == "prompt_no_input"
    with pytest.raises(SelfRagError, match="--mode retrieval"):
        check_prompt_name("llama_chat_prompt_retrieval", False)


def test_paragraph_and_prompt_format():
    paragraph = format_paragraph([{"title": "T1", "text": "one"}, {"title": "T2", "text": "two"}])
    assert paragraph == "[0] T1\none\n[1] T2\ntwo"
    assert build_prompt("llama_chat_prompt_retrieval", "Q", paragraph) == f"[INST]{paragraph}\nQ[/INST]"
    assert build_prompt("prompt_no_input", "Q") == "### Instruction:\nQ\n\n### Response:\n"


def test_passages_from_a_retrieval_file_by_id(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "question": "a"}, {"id": 2, "question": "b"}])
    retrieval = write_jsonl(tmp_path / "ret.jsonl", [
        {"id": "2", "ctxs": [{"title": "t2", "text": "two"}]},
        {"id": "1", "ctxs": [{"title": "t1", "text": "one"}]}])
    examples = load_baseline_examples(source, need_passages=True, retrieval_file=retrieval)
    assert [e.passages[0]["text"] for e in examples] == ["one", "two"]


def test_mismatched_retrieval_ids_and_lengths_are_located(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "question": "a"}, {"id": 3, "question": "b"}])
    retrieval = write_jsonl(tmp_path / "ret.jsonl", [{"id": "1", "ctxs": [{"text": "x"}]},
                                                     {"id": "2", "ctxs": [{"text": "y"}]}])
    with pytest.raises(InputError, match=r"in.jsonl, line 2: field 'id': id 3 not found"):
        load_baseline_examples(source, need_passages=True, retrieval_file=retrieval)
    no_ids = write_jsonl(tmp_path / "plain.jsonl", [{"question": "a"}] * 3)
    with pytest.raises(InputError, match="has 2 records but the input has 3"):
        load_baseline_examples(no_ids, need_passages=True, retrieval_file=retrieval)


def test_retrieval_without_passages_is_located(tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", [{"question": "a", "ctxs": [{"text": "x"}]},
                                                 {"question": "b", "ctxs": []}])
    with pytest.raises(InputError, match=r"line 2: field 'ctxs': no passages"):
        load_baseline_examples(source, need_passages=True)
    assert len(load_baseline_examples(source)) == 2  # vanilla needs none


def test_cut_at_first_blank_line_and_end_markers():
    assert cut_output("Paris</s>\n\nMore text") == "Paris"
    assert cut_output(" a\nb") == " a\nb"


def test_closed_set_postprocessing_maps_refutes_to_false():
    assert postprocess_closed("REFUTES", "fever", None) == "false"
    assert postprocess_closed("REFUTES", "fever", None, faithful=True) == "REFUTES"
    assert postprocess_closed("SUPPORTS", "fever", None) == "true"
    assert postprocess_closed("True", "fever", None) == "true"
    assert postprocess_closed("I think it is false, not true", None, ("true", "false")) == "false"
    assert postprocess_closed("no label", None, ("true", "false")) == "no label"


def test_faithful_postprocessing_reaches_only_the_last_partial_batch():
    assert [applies_to_item(i, 7, 5, faithful=True) for i in range(7)] == [False] * 5 + [True] * 2
    assert all(applies_to_item(i, 7, 5, faithful=False) for i in range(7))


def test_baseline_accuracy_is_first_gold_substring():
    accuracy = baseline_metric("accuracy")
    assert accuracy("it is true.", ["true", "false"]) == 1.0
    assert accuracy("false", ["true", "false"]) == 0.0
    assert baseline_metric("match")("false", ["true", "false"]) == 1.0


def test_records_get_postprocessed_outputs_by_default_and_the_quirk_when_faithful():
    from selfrag.baselines.inputs import BaselineExample
    from selfrag.baselines.runner import BaselineConfig, assemble_records

    examples = [BaselineExample(i + 1, {"id": i}, f"claim {i}", ["true"]) for i in range(7)]
    outputs = [{"raw": "SUPPORTS\n\nbecause"}] * 6 + [{"raw": "REFUTES"}]
    records, summary = assemble_records(BaselineConfig(task="fever", metric="accuracy"), examples,
                                        outputs)
    assert [r["output"] for r in records] == ["true"] * 6 + ["false"]
    assert summary["score"] == pytest.approx(6 / 7) and summary["n"] == 7
    assert records[0]["golds"] == ["true"] and records[0]["instruction"] == "claim 0"
    faithful = BaselineConfig(task="fever", metric="accuracy", faithful=True, batch_size=5)
    records, _ = assemble_records(faithful, examples, outputs)
    assert [r["output"] for r in records] == ["SUPPORTS"] * 5 + ["true", "REFUTES"]
