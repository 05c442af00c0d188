"""run_long_form_static.py end to end with a tiny random Llama on the bundled files."""

import json
from pathlib import Path

import pytest

from selfrag.cli import run_main

import run_long_form_static

ROOT = Path(__file__).resolve().parents[2]

ASQA = str(ROOT / "eval_data/asqa_dev.knowledge_docs.head20.json")
BIO = str(ROOT / "eval_data/factscore_bio.head20.jsonl")


def run(tmp_path, model, *extra, name="out"):
    out = tmp_path / name
    argv = ["--model_name", model, "--output_file", str(out), "--device", "cpu",
            "--max_new_tokens", "4", "--ndocs", "2", "--max_depth", "2", *extra]
    return run_main(run_long_form_static.main, argv), out


@pytest.mark.parametrize("faithful", [[], ["--faithful"]])
def test_asqa_writes_alces_format(tmp_path, tiny_model_path, faithful):
    code, out = run(tmp_path, tiny_model_path, "--task", "asqa", "--input_file", ASQA,
                    "--mode", "always_retrieve", "--use_grounding", "--use_utility", *faithful)
    assert code == 0
    result = json.loads(out.read_text())
    assert set(result) == {"data", "args", "total_cost", "azure_filter_fail"}
    assert len(result["data"]) == 20
    for item in result["data"]:
        assert {"question", "qa_pairs", "annotations", "output", "docs", "intermediate"} <= set(item)
        assert item["intermediate"]["retrieved"]


@pytest.mark.parametrize("mode", ["adaptive_retrieval", "no_retrieval"])
def test_factscore_jsonl_in_any_mode(tmp_path, tiny_model_path, mode):
    code, out = run(tmp_path, tiny_model_path, "--task", "factscore", "--input_file", BIO,
                    "--mode", mode, "--threshold", "0.2")
    assert code == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(lines) == 20
    assert set(lines[0]) == {"input", "output", "topic", "cat", "intermediate"}
    assert lines[0]["topic"] == "Jessie Mae Brown Beavers"
    if mode == "no_retrieval":
        assert not any(line["intermediate"]["retrieved"] for line in lines)


@pytest.mark.parametrize("flag, value, message", [
    ("--max_depth", "0", "--max_depth: must be at least 1"),
    ("--beam_width", "0", "--beam_width: must be at least 1"),
    ("--ndocs", "0", "--ndocs: must be at least 1"),
])
def test_bad_settings_exit_2(tmp_path, tiny_model_path, capsys, flag, value, message):
    code, out = run(tmp_path, tiny_model_path, "--task", "factscore", "--input_file", BIO, flag, value)
    assert code == 2 and not out.exists()
    assert message in capsys.readouterr().err


def test_missing_docs_are_reported_with_their_line(tmp_path, tiny_model_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"input": "Tell me a bio of X.", "ctxs": []}) + "\n")
    code, out = run(tmp_path, tiny_model_path, "--task", "factscore", "--input_file", str(bad))
    assert code == 2 and not out.exists()
    assert "bad.jsonl, line 1: field 'ctxs': has no passages but --ndocs is 2" in capsys.readouterr().err


def test_asqa_items_keep_the_docs_they_were_given(tmp_path, tiny_model_path):
    # issue 12 item 7: items that cited nothing came out with "docs: []"
    items = json.loads(Path(ASQA).read_text())
    items = items["data"][:3] if isinstance(items, dict) else items[:3]
    source = tmp_path / "asqa3.json"
    source.write_text(json.dumps(items))
    code, out = run(tmp_path, tiny_model_path, "--task", "asqa", "--input_file", str(source),
                    "--mode", "no_retrieval")
    assert code == 0
    data = json.loads(out.read_text())["data"]
    assert [item["docs"] for item in data] == [item["docs"][:2] for item in items]


def test_a_long_form_passage_too_long_for_the_model_is_one_located_error(tmp_path,
                                                                         tiny_model_path, capsys):
    # issue 12 item 4, long form
    items = json.loads(Path(ASQA).read_text())
    items = items["data"][:2] if isinstance(items, dict) else items[:2]
    items[0]["docs"][0]["text"] = "word " * 40_000
    source = tmp_path / "asqa2.json"
    source.write_text(json.dumps(items))
    code, out = run(tmp_path, tiny_model_path, "--task", "asqa", "--input_file", str(source),
                    "--mode", "always_retrieve")
    assert code == 2 and not out.exists()
    assert capsys.readouterr().err.splitlines()[-1].startswith(
        f"error: {source}, line 1: field 'docs': passage 0 makes a prompt of ")
