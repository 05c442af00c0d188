"""run_short_form.py end to end with a tiny random Llama on the bundled files."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from selfrag.cli import run_main
from selfrag.inference import short_form

import run_short_form

ROOT = Path(__file__).resolve().parents[2]

POPQA = str(ROOT / "eval_data/popqa_longtail_w_gs.head100.jsonl")
ARC = str(ROOT / "eval_data/arc_challenge_processed.head100.jsonl")
PUBHEALTH = str(ROOT / "eval_data/health_claims_processed.head100.jsonl")


def run(tmp_path, model, *extra, name="out.json"):
    out = tmp_path / name
    argv = ["--model_name", model, "--output_file", str(out), "--device", "cpu",
            "--max_new_tokens", "4", *extra]
    code = run_main(run_short_form.main, argv)
    return code, (json.loads(out.read_text()) if out.exists() else None)


def slice_file(tmp_path, source, n):
    path = tmp_path / f"slice{n}.jsonl"
    path.write_text("".join(Path(source).read_text().splitlines(keepends=True)[:n]))
    return str(path)


@pytest.mark.parametrize("mode, frequency", [
    ("adaptive_retrieval", None), ("always_retrieve", 1.0), ("no_retrieval", 0.0),
])
def test_popqa_in_each_mode(tmp_path, tiny_model_path, mode, frequency):
    code, out = run(tmp_path, tiny_model_path, "--input_file", POPQA, "--mode", mode,
                    "--ndocs", "3", "--threshold", "0.2", "--use_groundness", "--use_utility",
                    "--use_seqscore")
    assert code == 0
    assert len(out["preds"]) == len(out["metric_results"]) == len(out["golds"]) == 100
    assert out["golds"][0][:2] == ["politician", "political leader"]
    retrieved = [r["retrieved"] for r in out["all_results"]]
    assert out["retrieval_frequency"] == pytest.approx(sum(retrieved) / 100)
    if frequency is not None:
        assert out["retrieval_frequency"] == frequency
    for result in out["all_results"]:
        candidates = [v for k, v in result.items() if k.startswith("retrieval_") and isinstance(v, dict)]
        assert len(candidates) == (3 if result["retrieved"] else 0)
        for candidate in candidates:
            assert set(candidate["scores"]) == {"relevance", "support", "utility", "mean_logprob", "final"}


@pytest.mark.parametrize("task, source", [("fever", PUBHEALTH), ("arc_c", ARC)])
def test_closed_set_tasks(tmp_path, tiny_model_path, task, source):
    code, out = run(tmp_path, tiny_model_path, "--input_file", source, "--task", task,
                    "--mode", "always_retrieve", "--ndocs", "5", "--metric", "accuracy")
    assert code == 0 and len(out["preds"]) == 100
    assert all("option_scores" in r for r in out["all_results"])
    if task == "arc_c":
        assert out["golds"][0] == ["C"]
        assert out["prompts"][0].startswith("### Instruction:\nGiven four answer candidates")
        assert "\n\n### Input:\nAn astronomer observes" in out["prompts"][0]
        assert out["prompts"][0].endswith("\n\n### Response:\n")


def test_resume_after_a_crash_gives_an_identical_file(tmp_path, tiny_model_path, monkeypatch):
    source = slice_file(tmp_path, POPQA, 20)
    common = ["--input_file", source, "--ndocs", "2", "--threshold", "0.2", "--chunk_size", "6"]
    code, clean = run(tmp_path, tiny_model_path, *common, name="clean.json")
    assert code == 0

    real_run, calls = short_form.ShortFormEngine.run, []

    def crash_on_third(self, queries, progress=False):
        calls.append(len(queries))
        if len(calls) == 3:
            raise KeyboardInterrupt  # as if killed mid-run
        return real_run(self, queries, progress)

    monkeypatch.setattr(short_form.ShortFormEngine, "run", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, tiny_model_path, *common, name="resumed.json")
    assert not (tmp_path / "resumed.json").exists()
    assert (tmp_path / "resumed.json.partial").exists()
    calls.clear()
    code, resumed = run(tmp_path, tiny_model_path, *common, name="resumed.json")
    assert code == 0 and calls == [6, 2]  # only chunks 2 and 3 of 0..3 were redone
    assert resumed == clean
    assert not (tmp_path / "resumed.json.partial").exists()


@pytest.mark.parametrize("change", ["input", "model"])
def test_a_journal_of_another_input_or_model_is_refused(tmp_path, tiny_model_path, monkeypatch,
                                                        capsys, change):
    # issue 12 item 1: the input's first items were replaced (or the model retrained in place)
    # after a kill, and the rerun kept the old answers of the first chunks, exit 0
    import shutil

    model = tmp_path / "model"
    shutil.copytree(tiny_model_path, model)
    source = slice_file(tmp_path, POPQA, 8)
    common = ["--input_file", source, "--ndocs", "2", "--threshold", "0.2", "--chunk_size", "4"]
    real_run, calls = short_form.ShortFormEngine.run, []

    def crash_on_second(self, queries, progress=False):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if killed mid-run
        return real_run(self, queries, progress)

    monkeypatch.setattr(short_form.ShortFormEngine, "run", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, str(model), *common)
    assert (tmp_path / "out.json.partial").exists()
    monkeypatch.setattr(short_form.ShortFormEngine, "run", real_run)
    if change == "input":
        lines = Path(POPQA).read_text().splitlines(keepends=True)
        Path(source).write_text("".join(lines[10:14] + lines[4:8]))
    else:
        config = model / "config.json"
        config.write_text(config.read_text() + "\n")  # other files, as after retraining
    capsys.readouterr()
    code, out = run(tmp_path, str(model), *common)
    assert code == 2 and out is None
    what = "input file content" if change == "input" else "model (other weights or files)"
    assert f"(different: {what})" in capsys.readouterr().err


def test_a_second_run_on_the_same_output_is_refused_before_its_model_loads(tmp_path, capsys):
    # issue 12 item 2: two runs (e.g. two --mode values) on one --output_file interleaved their
    # chunks in <output>.partial
    from test_locks import OtherRun  # tests/ is on pytest's pythonpath

    out = tmp_path / "out.json"
    with OtherRun(out) as other:
        code, _ = run(tmp_path, "no-such-model", "--input_file", POPQA, "--mode", "no_retrieval")
    assert code == 2
    assert capsys.readouterr().err == (
        f"error: --output_file {out} is being written by another run (process {other.pid}, "
        f"holding {out}.lock); wait for it to finish or write elsewhere\n")
    assert not (tmp_path / "out.json.partial").exists()


def test_a_passage_too_long_for_the_model_is_one_located_error(tmp_path, tiny_model_path,
                                                              capsys):
    # issue 12 item 4: a 200,000-character passage gave a 40,001-token prompt to a 4,096-position
    # model: a transformers warning, exit 0, a meaningless answer
    lines = Path(POPQA).read_text().splitlines()[:2]
    item = json.loads(lines[1])
    item["ctxs"][1]["text"] = "word " * 40_000
    source = tmp_path / "in.jsonl"
    source.write_text(lines[0] + "\n" + json.dumps(item) + "\n")
    code, out = run(tmp_path, tiny_model_path, "--input_file", str(source), "--ndocs", "2",
                    "--mode", "always_retrieve")
    assert code == 2 and out is None
    err = capsys.readouterr().err.splitlines()[-1]  # after the model's loading bar
    assert err.startswith(f"error: {source}, line 2: field 'ctxs': passage 1 makes a prompt of ")
    assert err.endswith("tokens; with --max_new_tokens 4 it exceeds the model's context of 4096 "
                        "positions (shorten the passage, or lower --ndocs/--max_new_tokens)")


def test_bad_input_exits_2_and_writes_nothing(tmp_path, tiny_model_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "Q", "answers": ["a"], "ctxs": []}) + "\n")
    result = subprocess.run(
        [sys.executable, str(ROOT / "retrieval_lm/run_short_form.py"), "--model_name", tiny_model_path,
         "--input_file", str(bad), "--output_file", str(tmp_path / "o.json"), "--device", "cpu"],
        capture_output=True, text=True)
    assert result.returncode == 2
    assert "bad.jsonl, line 1: field 'ctxs': no passages" in result.stderr
    assert not (tmp_path / "o.json").exists()


def test_flag_errors(tmp_path, tiny_model_path, capsys):
    code, out = run(tmp_path, tiny_model_path, "--input_file", POPQA, "--ndocs", "0")
    assert code == 2 and out is None
    assert "--ndocs: must be at least 1" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # argparse rejects an unknown task
        run(tmp_path, tiny_model_path, "--input_file", POPQA, "--task", "squad")


def test_a_model_without_reflection_tokens_is_refused(tmp_path, plain_tokenizer, capsys):
    import torch
    from transformers import LlamaForCausalLM

    from selfrag.offline_models import tiny_llama_config

    folder = tmp_path / "plain-model"
    torch.manual_seed(0)
    LlamaForCausalLM(tiny_llama_config(len(plain_tokenizer))).save_pretrained(folder)
    plain_tokenizer.save_pretrained(folder)
    code, out = run(tmp_path, str(folder), "--input_file", POPQA, "--ndocs", "1")
    assert code == 2 and out is None
    assert "lacks 15 of the 15 Self-RAG reflection tokens" in capsys.readouterr().err


def test_an_input_that_is_not_utf8_is_one_error_line(tmp_path, capsys):
    # issue 12 item 9: was a UnicodeDecodeError traceback; checked before any model loads
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"question": "Q", "answers": ["a"]}\n{"question": "caf\xe9"}\n')
    code, _ = run(tmp_path, "no-such-model", "--input_file", str(source), "--mode", "no_retrieval")
    assert code == 2
    assert capsys.readouterr().err == (f"error: {source}, line 2: not UTF-8 text (byte 0xe9 at "
                                       "column 18); re-encode the file as UTF-8\n")
