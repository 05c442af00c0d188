"""scripts/result_table.py: Table 2-shaped markdown from run outputs."""

import json
from pathlib import Path

from selfrag.baselines.tables import PAPER_TABLE2, render_table, score_run
from selfrag.cli import run_main

import result_table

ROOT = Path(__file__).resolve().parents[2]


def short_form_output(path, preds, golds, metric="match"):
    from selfrag.evaluation.metrics import get_metric

    results = [get_metric(metric)(p, g) for p, g in zip(preds, golds)]
    path.write_text(json.dumps({"preds": preds, "golds": golds, "metric_results": results,
                                "metric": metric, "task": None}))
    return str(path)


def baseline_output(path, outputs, golds, metric="accuracy"):
    path.write_text("".join(json.dumps({"question": "q", "output": o, "golds": g,
                                        "metric_result": float(g[0] in o), "metric": metric}) + "\n"
                            for o, g in zip(outputs, golds)))
    return str(path)


def test_table_rows_methods_columns_tasks_with_paper_rows(tmp_path, capsys):
    selfrag_popqa = short_form_output(tmp_path / "sr_popqa.json", ["Paris", "x", "Rome", "y"],
                                      [["Paris"], ["a"], ["Rome"], ["b"]])
    baseline_output(tmp_path / "bl_pub.jsonl", ["true", "true", "false"],
                    [["true"], ["false"], ["false"]])
    manifest = tmp_path / "runs.json"
    manifest.write_text(json.dumps([{"method": "Baseline", "task": "fever", "path": "bl_pub.jsonl"}]))
    out = tmp_path / "table.md"
    code = run_main(result_table.main, ["--run", "Self-RAG (ours)", "popqa", selfrag_popqa,
                                        "--manifest", str(manifest), "--paper_rows", "Self-RAG 7B",
                                        "--output", str(out)])
    assert code == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "| method | PopQA | Pub |"
    assert lines[2] == "| Self-RAG (ours) | 50.0 | – |"
    assert lines[3] == "| Baseline | – | 66.7 |"
    assert lines[4] == "| Self-RAG 7B (paper) | 54.9 | 72.4 |"
    assert "| Baseline | pubhealth | accuracy | 3 |" in out.read_text()
    assert capsys.readouterr().out == out.read_text()


def test_metric_is_recomputed_when_given(tmp_path):
    path = baseline_output(tmp_path / "b.jsonl", ["The Paris", "rome"], [["paris"], ["Rome"]],
                           metric="match")
    assert score_run("m", "popqa", path).score == 0.0
    assert score_run("m", "popqa", path, "em").score == 100.0


def test_all_columns_and_paper_numbers():
    table = render_table([], list(PAPER_TABLE2), all_columns=True)
    assert table.splitlines()[0].startswith("| method | PopQA | TQA | Pub | ARC | Bio | ASQA em |")
    assert "| Self-RAG 13B (paper) | 55.8 | 69.3 | 74.5 | 73.1 | 80.2 | 31.7 | 37.0 | 71.6 | 70.3 | 71.3 |" in table
    assert "| Perplexity.ai (paper) | – | – | – | – | 71.2 |" in table


def test_bad_runs_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    for argv, message in [
        (["--run", "m", "popqa", str(bad)], "not a run_short_form output"),
        (["--run", "m", "nosuchtask", str(bad)], "unknown task 'nosuchtask'"),
        (["--run", "m", "popqa"], "METHOD TASK FILE [METRIC]"),
        (["--run", "m", "popqa", str(tmp_path / "none.jsonl")], "file not found"),
        (["--paper_rows", "GPT-9"], "unknown ['GPT-9']"),
    ]:
        assert run_main(result_table.main, argv) == 2
        assert message in capsys.readouterr().err
