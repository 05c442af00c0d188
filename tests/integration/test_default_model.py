"""The real offline default model (SmolLM2-135M-Instruct + reflection tokens). Slow: ~1 min."""

import json
from pathlib import Path

import pytest

from selfrag.cli import run_main

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_default_model_has_the_tokens_and_answers_popqa(tmp_path, capsys):
    import sys

    from transformers import AutoTokenizer

    from selfrag.offline_models import ensure_default_model
    from selfrag.tokens import reflection_token_ids

    folder = ensure_default_model()
    ids = reflection_token_ids(AutoTokenizer.from_pretrained(folder))
    assert len(set(ids.all_ids)) == 15

    sys.path.insert(0, str(ROOT / "retrieval_lm"))
    import run_short_form

    source = tmp_path / "popqa3.jsonl"
    lines = (ROOT / "eval_data/popqa_longtail_w_gs.head100.jsonl").read_text().splitlines(True)[:3]
    source.write_text("".join(lines))
    out = tmp_path / "out.json"
    code = run_main(run_short_form.main, [
        "--model_name", "smollm2-135m", "--input_file", str(source), "--output_file", str(out),
        "--mode", "always_retrieve", "--ndocs", "2", "--max_new_tokens", "12", "--device", "cpu",
        "--use_groundness", "--use_utility", "--use_seqscore", "--w_use", "0.5"])
    assert code == 0
    result = json.loads(out.read_text())
    assert len(result["preds"]) == 3 and result["retrieval_frequency"] == 1.0
    # A real language model continues in words, not in noise.
    assert all(any(ch.isalpha() for ch in p) for p in result["preds"])


def test_demo_runs_offline(capsys):
    from selfrag import demo

    demo.main(["--n_popqa", "1", "--ndocs", "1", "--max_new_tokens", "6"])
    shown = capsys.readouterr().out
    assert "trained into a small" in shown and "selfrag-smollm2-135m" in shown
    assert shown.count("Q: ") == 4 and shown.count("\nA: ") == 4
    assert "IsRel" in shown and "p([Retrieval])" in shown
    # Each answer is printed as it is done, with its time; the trained model's own δ is used.
    assert shown.count("answered in") == 4 and "done: 4 questions" in shown
    assert "Adaptive retrieval threshold δ=" in shown
