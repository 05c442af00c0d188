"""run_baseline_lm.py end to end with a tiny random Llama on slices of the bundled files."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from selfrag.baselines import runner
from selfrag.cli import run_main
from selfrag.prompts import TASK_INST

import run_baseline_lm

ROOT = Path(__file__).resolve().parents[2]

POPQA = ROOT / "eval_data/popqa_longtail_w_gs.head100.jsonl"
ARC = ROOT / "eval_data/arc_challenge_processed.head100.jsonl"
PUBHEALTH = ROOT / "eval_data/health_claims_processed.head100.jsonl"


def slice_file(tmp_path, source, n, name=None):
    path = tmp_path / (name or f"{Path(source).stem}.{n}.jsonl")
    path.write_text("".join(Path(source).read_text().splitlines(keepends=True)[:n]))
    return str(path)


def run(tmp_path, model, *extra, name="out.jsonl"):
    out = tmp_path / name
    argv = ["--model_name", model, "--result_fp", str(out), "--device", "cpu",
            "--max_new_tokens", "3", *extra]
    code = run_main(run_baseline_lm.main, argv)
    records = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else None
    return code, records


@pytest.mark.parametrize("mode", ["vanilla", "retrieval", "rag_sequence", "rag_token"])
def test_each_mode_on_popqa(tmp_path, tiny_model_path, mode):
    source = slice_file(tmp_path, POPQA, 4)
    code, records = run(tmp_path, tiny_model_path, "--input_file", source, "--mode", mode,
                        "--top_n", "2", "--metric", "match", "--batch_size", "3")
    assert code == 0 and len(records) == 4
    first = records[0]
    assert first["golds"][:2] == ["politician", "political leader"]
    assert first["metric_result"] in (0.0, 1.0) and first["metric"] == "match"
    assert first["instruction"] == "What is Henry Feilden's occupation?"
    assert isinstance(first["output"], str) and "\n\n" not in first["output"]
    if mode == "vanilla":
        assert "paragraph" not in first
    else:
        assert first["paragraph"].startswith("[0] Henry Feilden (Conservative politician)\n")
        assert "\n[1] " in first["paragraph"]
    if mode.startswith("rag"):
        assert len(first["rag"]["doc_weights"]) == 2
        assert sum(first["rag"]["doc_weights"]) == pytest.approx(1.0)


@pytest.mark.parametrize("task, source, prefix", [
    ("fever", PUBHEALTH, TASK_INST["fever"]), ("arc_c", ARC, TASK_INST["arc_c"]),
])
def test_closed_set_tasks_get_their_instruction(tmp_path, tiny_model_path, task, source, prefix):
    code, records = run(tmp_path, tiny_model_path, "--input_file", slice_file(tmp_path, source, 3),
                        "--task", task, "--metric", "accuracy", "--choices", "true false")
    assert code == 0 and len(records) == 3
    assert records[0]["instruction"].startswith(prefix + "\n\n### Input:\n")
    if task == "arc_c":
        assert records[0]["golds"] == ["C"]
        assert records[0]["instruction"].endswith("\nD: Planetary gravity will become stronger.")


def test_input_smaller_than_the_batch_and_faithful_sampling(tmp_path, tiny_model_path):
    source = slice_file(tmp_path, POPQA, 2)
    code, records = run(tmp_path, tiny_model_path, "--input_file", source, "--batch_size", "5",
                        "--faithful")
    assert code == 0 and len(records) == 2


def test_resume_after_a_crash_gives_an_identical_file(tmp_path, tiny_model_path, monkeypatch):
    source = slice_file(tmp_path, POPQA, 5)
    common = ["--input_file", source, "--mode", "retrieval", "--chunk_size", "2"]
    code, _ = run(tmp_path, tiny_model_path, *common, name="clean.jsonl")
    assert code == 0
    real, calls = runner._run_chunk, []

    def crash_on_second(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated crash")
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "_run_chunk", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, tiny_model_path, *common, name="resumed.jsonl")
    assert not (tmp_path / "resumed.jsonl").exists()
    assert (tmp_path / "resumed.jsonl.partial").exists()
    monkeypatch.setattr(runner, "_run_chunk", real)
    code, _ = run(tmp_path, tiny_model_path, *common, name="resumed.jsonl")
    assert code == 0
    assert (tmp_path / "resumed.jsonl").read_text() == (tmp_path / "clean.jsonl").read_text()
    assert not (tmp_path / "resumed.jsonl.partial").exists()


def test_bad_inputs_exit_2_with_a_located_error_and_write_nothing(tmp_path, capsys):
    no_ctxs = tmp_path / "no_ctxs.jsonl"
    no_ctxs.write_text('{"question": "a", "answers": ["x"]}\n')
    ids = tmp_path / "ids.jsonl"
    ids.write_text('{"id": 7, "question": "a"}\n')
    other_ids = tmp_path / "other.jsonl"
    other_ids.write_text('{"id": 8, "ctxs": [{"title": "t", "text": "x"}]}\n')
    cases = [
        (["--input_file", str(no_ctxs), "--prompt_name", "prompt_nope"], "--prompt_name: unknown"),
        (["--input_file", str(no_ctxs), "--mode", "retrieval"], "line 1: field 'ctxs': no passages"),
        (["--input_file", str(ids), "--mode", "retrieval", "--retrieval_file", str(other_ids)],
         "ids.jsonl, line 1: field 'id': id 7 not found"),
        (["--input_file", str(tmp_path / "missing.jsonl")], "file not found"),
    ]
    for argv, message in cases:
        code, records = run(tmp_path, "never-loaded-model", *argv)
        assert code == 2 and records is None
        assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ids.jsonl", "no_ctxs.jsonl", "other.jsonl"]


def test_run_baseline_refactor_is_the_same_command(tmp_path):
    script = ROOT / "retrieval_lm/run_baseline_refactor.py"
    help_text = subprocess.run([sys.executable, str(script), "--help"], cwd=ROOT,
                               capture_output=True, text=True, check=True).stdout
    for flag in ("--model_name", "--retrieval_file", "--top_n", "--prompt_name", "--api_key"):
        assert flag in help_text
    done = subprocess.run([sys.executable, str(script), "--input_file", str(tmp_path / "none.jsonl"),
                           "--result_fp", str(tmp_path / "o.jsonl")], cwd=ROOT,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2 and "none.jsonl: file not found" in done.stderr
