"""combine_chat_gpt_reward.py: judge records -> critic SFT instances, seeded train/dev split."""

import importlib.util
import json
from pathlib import Path

import pytest

from selfrag.cli import run_main
from selfrag.data_creation.critic.sft_instances import SftOptions, convert_files, split
from selfrag.data_creation.critic.templates import INSTRUCTIONS
from selfrag.errors import InputError
from selfrag.tokens import (
    CONTINUE_EVIDENCE,
    FULLY_SUPPORTED,
    IRRELEVANT,
    NO_RETRIEVAL,
    PARTIALLY_SUPPORTED,
    RELEVANT,
    RETRIEVAL,
    UTILITY,
)
from selfrag.training.sft_data import EncodeOptions, encode_example, load_examples

ROOT = Path(__file__).resolve().parents[3]
SENTENCE = {"instruction": "Who built it?", "preceding_sentences": "It is old.",
            "evidence": "Built by Eiffel.", "target_output": "Eiffel built it.", "sent_idx": 1}
FIRST_SENTENCE = {**SENTENCE, "preceding_sentences": "", "sent_idx": 0}


def combine_main():
    path = ROOT / "data_creation/critic/gpt4_reward/combine_chat_gpt_reward.py"
    spec = importlib.util.spec_from_file_location("combine", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def dump(path: Path, records) -> str:
    path.write_text(json.dumps(records))
    return str(path)


def convert(tmp_path, file_type, records, **options):
    return convert_files({file_type: [dump(tmp_path / f"{file_type}.json", records)]},
                         SftOptions(**options))


def ours(item, label, prompt, **fields):
    return {"input": item, "raw_output": f"{label}\nExplanation: e", "label": label,
            "prompt": prompt, "judge": "gpt-4", **fields}


def test_utility_our_records_and_the_original_integer_scores(tmp_path):
    item = {"instruction": "Name a planet.", "output": "Mars."}
    out = convert(tmp_path, "ut_file", [
        ours(item, UTILITY[3], "utility", score=4),
        {"input": item, "score": 2, "explanation": 2, "raw_output": "2\nExplanation: e"},
        {"input": item, "score": "", "raw_output": "Perceived utility: 5"},  # rejected, as orig.
    ])
    assert out == [
        {"instruction": INSTRUCTIONS["utility_instruction"],
         "input": "Task instruction: Name a planet.\nOutput: Mars.", "output": UTILITY[3],
         "task": "utility"},
        {"instruction": INSTRUCTIONS["utility_instruction"],
         "input": "Task instruction: Name a planet.\nOutput: Mars.", "output": UTILITY[1],
         "task": "utility"},
    ]


def test_input_only_retrieval_reads_all_three_record_forms(tmp_path):
    out = convert(tmp_path, "ret_file", [
        ours({"instruction": "Capital of Peru?"}, RETRIEVAL, "retrieval", decision_token="[Yes]"),
        # The original labeller's records (which the original combiner could not read).
        {"input": {"instruction": "Write a poem."}, "decision_token": " [No]",
         "explanation": "e", "raw_output": " [No]\nExplanation: e"},
        # The form the original combiner expected.
        {"input": "##\nTask instruction: Explain tides.", "output": "Yes"},
        {"input": {"instruction": "Hmm."}, "decision_token": ""},  # no label: skipped
    ])
    assert [(o["input"], o["output"]) for o in out] == [
        ("Task instruction: Capital of Peru?", RETRIEVAL),
        ("Task instruction: Write a poem.", NO_RETRIEVAL),
        ("Task instruction: Explain tides.", RETRIEVAL)]
    assert {o["instruction"] for o in out} == {INSTRUCTIONS["retrieval_instruction"]}
    assert {o["task"] for o in out} == {"retrieval"}


def test_sentence_level_retrieval_two_and_three_way(tmp_path):
    out = convert(tmp_path, "multi_ret_file", [
        ours(SENTENCE, RETRIEVAL, "multi_retrieval", decision_token=RETRIEVAL),
        ours(SENTENCE, CONTINUE_EVIDENCE, "multi_retrieval_three_way",
             decision_token=CONTINUE_EVIDENCE),
        {"input": FIRST_SENTENCE, "decision_token": NO_RETRIEVAL, "raw_output": "x"},  # original
        {"input": SENTENCE, "decision_token": "[Yes]", "raw_output": "x"},  # not a label: skipped
    ])
    expected_input = ("Task instruction: Who built it?\nPreceding sentences: It is old.\n"
                      "Evidence: Built by Eiffel.\nOutput: Eiffel built it.")
    assert out[0] == {"instruction": INSTRUCTIONS["retrieval_multi_instruction"],
                      "input": expected_input, "output": RETRIEVAL, "task": "multi_retrieval"}
    assert out[1]["instruction"] == INSTRUCTIONS["multi_retrieval_three_way_instruction"]
    assert out[1]["input"] == expected_input and out[1]["output"] == CONTINUE_EVIDENCE
    assert out[2]["instruction"] == INSTRUCTIONS["multi_retrieval_three_way_instruction"]
    assert out[2]["input"].startswith("Task instruction: Who built it?\nPreceding sentences: \n")
    assert len(out) == 3


def test_relevance_our_records_and_the_original_first_line_rule(tmp_path):
    item = {"instruction": "Age to run for the House?", "evidence": "Senators must be 30."}
    out = convert(tmp_path, "rel_file", [
        ours(item, RELEVANT, "relevance", score=RELEVANT),
        {"input": item, "score": "", "raw_output": "[Irrelevant] \nExplanation: Senate."},
        {"input": item, "score": "", "raw_output": "Irrelevant\nExplanation: bare word"},
    ])
    assert [o["output"] for o in out] == [RELEVANT, IRRELEVANT]
    assert out[0] == {"instruction": INSTRUCTIONS["relevance_instruction"],
                      "input": "Task instruction: Age to run for the House?\n"
                               "Evidence: Senators must be 30.",
                      "output": RELEVANT, "task": "relevance"}


def test_groundness_template_follows_the_items_preceding_sentences(tmp_path):
    records = [ours(SENTENCE, FULLY_SUPPORTED, "groundness_multi"),
               ours(FIRST_SENTENCE, PARTIALLY_SUPPORTED, "groundness_multi_no_preceding"),
               {"input": SENTENCE, "score": "", "raw_output": f"{FULLY_SUPPORTED}\nExplanation: e"}]
    out = convert(tmp_path, "multi_ground_file", records)
    with_preceding = ("Task instruction: Who built it?\nPreceding sentences: It is old.\n"
                      "Output: Eiffel built it.\nEvidence: Built by Eiffel.")
    without = "Task instruction: Who built it?\nOutput: Eiffel built it.\nEvidence: Built by Eiffel."
    assert [o["input"] for o in out] == [with_preceding, without, with_preceding]
    assert {o["instruction"] for o in out} == {INSTRUCTIONS["ground_multi_instruction"]}
    assert {o["task"] for o in out} == {"groundness"}
    # --faithful: the original looked sent_idx up on the record, so never used the preceding.
    faithful = convert(tmp_path, "multi_ground_file", records, faithful=True)
    assert [o["input"] for o in faithful] == [without] * 3
    assert {o["task"] for o in faithful} == {"groudness"}


def test_groundness_from_the_1_to_5_scale_labeller(tmp_path):
    item = {"instruction": "When was it built?", "evidence": "In 1889.", "output": "In 1889."}
    out = convert(tmp_path, "multi_ground_file",
                  [ours(item, FULLY_SUPPORTED, "groundness_context", score=5)])
    assert out[0]["input"] == "Task instruction: When was it built?\nOutput: In 1889.\nEvidence: In 1889."


def test_items_holding_a_response_marker_are_dropped(tmp_path):
    item = {"instruction": "Explain.\n### Response:", "output": "x"}
    assert convert(tmp_path, "ut_file", [ours(item, UTILITY[0], "utility")]) == []


def test_faithful_keeps_relevant_with_probability_0_7_reproducibly(tmp_path):
    item = {"instruction": "q", "evidence": "e"}
    records = [ours(item, RELEVANT, "relevance")] * 400 + [ours(item, IRRELEVANT, "relevance")] * 50
    fixed = convert(tmp_path, "rel_file", records)
    assert len(fixed) == 450  # no down-sampling unless --faithful
    faithful = convert(tmp_path, "rel_file", records, faithful=True, seed=1)
    kept = sum(o["output"] == RELEVANT for o in faithful)
    assert 240 < kept < 320 and sum(o["output"] == IRRELEVANT for o in faithful) == 50
    assert faithful == convert(tmp_path, "rel_file", records, faithful=True, seed=1)


def test_split_is_seeded(tmp_path):
    instances = [{"instruction": "i", "input": str(k), "output": RELEVANT} for k in range(40)]
    train, dev = split(instances, SftOptions(seed=42, dev_size=10))
    assert len(train) == 30 and len(dev) == 10
    assert sorted(x["input"] for x in train + dev) == sorted(x["input"] for x in instances)
    assert (train, dev) == split(instances, SftOptions(seed=42, dev_size=10))
    assert dev != split(instances, SftOptions(seed=7, dev_size=10))[1]


@pytest.mark.parametrize(("flag", "record", "where"), [
    ("--rel_file", {"input": {"instruction": "q", "evidence": "e"}, "label": UTILITY[2]},
     "line 2: field 'label': '[Utility:3]' is not one of"),
    ("--ut_file", {"input": "text", "score": 3}, "line 2: field 'input': must be the labelled item"),
    ("--rel_file", {"input": {"instruction": "q"}, "label": RELEVANT},
     "line 2: field 'input.evidence': missing"),
    ("--ret_file", {"input": "no marker", "output": "Yes"}, "line 2: field 'input': a string"),
])
def test_bad_records_are_located_errors_and_nothing_is_written(tmp_path, capsys, flag, record,
                                                               where):
    good = {"input": {"instruction": "q", "evidence": "e", "output": "o"}, "label": RELEVANT}
    if flag == "--ut_file":
        good["label"] = UTILITY[0]
    if flag == "--ret_file":
        good["label"] = RETRIEVAL
    path = tmp_path / "labels.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(record) + "\n")
    code = run_main(combine_main(), [flag, str(path), "--output_file_name", str(tmp_path / "c")])
    assert code == 2
    assert f"labels.jsonl, {where}" in capsys.readouterr().err
    assert not list(tmp_path.glob("c_*.json"))


def test_labelled_files_without_any_instance_are_an_error(tmp_path, capsys):
    # issue 12 item 5: empty labelled files gave empty train/dev files and exit 0
    empty = tmp_path / "rel.json"
    empty.write_text("[]\n")
    code = run_main(combine_main(), ["--rel_file", str(empty), "--output_file_name",
                                     str(tmp_path / "c")])
    assert code == 2
    assert capsys.readouterr().err == (f"error: {empty}: no critic training instances "
                                       "(the inputs are empty)\n")
    assert not list(tmp_path.glob("c_*.json"))


def test_convert_files_raises_input_error_with_location(tmp_path):
    with pytest.raises(InputError) as err:
        convert(tmp_path, "ut_file", [{"input": {"instruction": "x"}, "score": 3}])
    assert err.value.line == 1 and err.value.field == "input.output"


def test_cli_any_subset_of_files_and_the_trainer_reads_the_result(tmp_path, capsys,
                                                                  base_tokenizer):
    rel = dump(tmp_path / "rel.json", [ours({"instruction": f"q{k}", "evidence": "e"},
                                            IRRELEVANT, "relevance") for k in range(5)])
    ut = dump(tmp_path / "ut.json", [ours({"instruction": "q", "output": "o"}, UTILITY[4],
                                          "utility")])
    name = str(tmp_path / "critic")
    assert run_main(combine_main(), ["--rel_file", rel, "--ut_file", ut, "--output_file_name",
                                     name, "--dev_size", "2"]) == 0
    train, dev = load_examples(f"{name}_train.json"), load_examples(f"{name}_dev.json")
    assert len(train) == 4 and len(dev) == 2
    assert "relevance [Irrelevant]: 5" in capsys.readouterr().out
    example = train[0]
    encoded = encode_example(base_tokenizer, example, EncodeOptions(critic=True))
    target = [t for t, lab in zip(encoded["input_ids"], encoded["labels"]) if lab != -100]
    assert base_tokenizer.decode(target).startswith(example["output"])
    assert run_main(combine_main(), ["--output_file_name", name]) == 2  # no file at all
