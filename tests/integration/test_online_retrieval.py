"""run_short_form.py retrieving online from an index, instead of reading the records' ctxs."""

import json
import subprocess
import sys
from pathlib import Path

from selfrag.cli import run_main

import run_short_form

ROOT = Path(__file__).resolve().parents[2]


def test_passages_come_from_the_index(tmp_path, tiny_model_path):
    corpus = tmp_path / "corpus.jsonl"
    lines = (ROOT / "eval_data/corpus/corpus.jsonl").read_text(encoding="utf-8").splitlines(True)
    corpus.write_text("".join(lines[:40]), encoding="utf-8")
    ids = {json.loads(line)["id"] for line in lines[:40]}
    subprocess.run([sys.executable, str(ROOT / "retrieval_lm/generate_passage_embeddings.py"),
                    "--passages", str(corpus), "--output_dir", str(tmp_path / "emb"),
                    "--per_gpu_batch_size", "16"], check=True, capture_output=True)
    questions = tmp_path / "q.jsonl"
    popqa = (ROOT / "eval_data/popqa_longtail_w_gs.head100.jsonl").read_text().splitlines(True)[:4]
    questions.write_text("".join(popqa))
    out = tmp_path / "out.json"
    code = run_main(run_short_form.main, [
        "--model_name", tiny_model_path, "--input_file", str(questions), "--output_file", str(out),
        "--device", "cpu", "--mode", "always_retrieve", "--ndocs", "3", "--max_new_tokens", "3",
        "--passages", str(corpus), "--passages_embeddings", str(tmp_path / "emb" / "passages_*")])
    assert code == 0
    result = json.loads(out.read_text())
    for record in result["all_results"]:
        ctxs = [record[f"retrieval_{i}"]["ctx"] for i in range(3)]
        assert all(c["id"] in ids and "score" in c for c in ctxs)
        assert [c["score"] for c in ctxs] == sorted((c["score"] for c in ctxs), reverse=True)
    # The first question's own Contriever passage is in the corpus slice and should come first.
    first = result["all_results"][0]["retrieval_0"]["ctx"]
    assert "Feilden" in first["title"]


def test_online_retrieval_flags_come_in_pairs(tmp_path, tiny_model_path, capsys):
    code = run_main(run_short_form.main, [
        "--model_name", tiny_model_path, "--input_file", "x.jsonl", "--output_file",
        str(tmp_path / "o.json"), "--passages", "corpus.jsonl"])
    assert code == 2 and "give both for online retrieval" in capsys.readouterr().err
