"""The threshold sweep reproduces separate runs with --threshold t (paper Fig. 3)."""

import csv
import json
from pathlib import Path

import pytest

from selfrag.baselines.threshold_sweep import SweepEntry, summarise, sweep_pass
from selfrag.cli import run_main
from selfrag.evaluation.metrics import match
from selfrag.inference.scoring import CritiqueWeights
from selfrag.inference.short_form import ShortFormConfig, ShortFormEngine, ShortFormQuery
from selfrag.lm.scripted import ScriptedLM, Step
from selfrag.prompts import format_prompt

import run_short_form
import threshold_sweep

ROOT = Path(__file__).resolve().parents[2]

POPQA = ROOT / "eval_data/popqa_longtail_w_gs.head100.jsonl"
PASSAGES = [{"title": "A", "text": "alpha"}, {"title": "B", "text": "beta"}]
# p(Ret), p(NoRet) at the first position per question; ratios 0.75, 0.011, 0.5, 0.909, 0.25
DECISIONS = {"q1": (0.3, 0.1), "q2": (0.01, 0.9), "q3": (0.2, 0.2), "q4": (0.5, 0.05),
             "q5": (0.1, 0.3), "q6": (0.6, 0.1)}
THRESHOLDS = [0.0, 0.011, 0.25, 0.3, 0.5, 0.75, 0.9, 1.0]


def scripted_lm(labels=(" yes", " no"), text_p=(0.8, 0.8)):
    """``text_p``: probability of the answer after passage A and after passage B."""
    def script(prompt):
        question = prompt.split("\n")[1]
        if prompt.endswith("[No Retrieval]"):
            return [Step({labels[1] if question in ("q1", "q4") else f" {question}": 0.7}),
                    Step({"</s>": 1.0})]
        if "</paragraph>" in prompt:
            title = prompt.split("<paragraph>")[1].split("\n")[0]
            p_rel = 0.9 if (title == "A") == (question in ("q1", "q3", "q5")) else 0.4
            text = labels[0] if title == "A" else f" {question}{title}"
            p_text = text_p[0] if title == "A" else text_p[1]
            return [Step({"[Relevant]": p_rel, "[Irrelevant]": 1 - p_rel}), Step({text: p_text}),
                    Step({"[Fully supported]": 0.6, "[Partially supported]": 0.4}),
                    Step({"[Utility:5]": 0.7, "[Utility:4]": 0.3}), Step({"</s>": 1.0})]
        p_ret, p_no = DECISIONS[question]
        return [Step({"[Retrieval]": p_ret, "[No Retrieval]": p_no}), Step({"</s>": 1.0})]
    return ScriptedLM(script)


def queries():
    out = [ShortFormQuery(format_prompt(q), PASSAGES, q) for q in DECISIONS]
    out[-1] = ShortFormQuery(format_prompt("q6"), (), "q6")  # no passages: can never retrieve
    return out


@pytest.mark.parametrize("task, faithful", [(None, False), ("fever", False), (None, True),
                                            ("fever", True)])
def test_sweep_equals_separate_runs_at_every_threshold(task, faithful):
    config = ShortFormConfig(task=task, faithful=faithful, max_new_tokens=8,
                             weights=CritiqueWeights(1.0, 1.0, 0.5))
    entries = sweep_pass(scripted_lm(), config, queries())
    thresholds = THRESHOLDS if not faithful else [0.0, 0.2, 0.35, 0.5, 0.8, 1.0]
    seen_frequencies = set()
    for t in thresholds:
        separate = ShortFormEngine(scripted_lm(), ShortFormConfig(
            mode="adaptive_retrieval", threshold=t, task=task, faithful=faithful, max_new_tokens=8,
            weights=CritiqueWeights(1.0, 1.0, 0.5))).run(queries())
        assert [e.result(t) for e in entries] == [r.to_dict() for r in separate], t
        seen_frequencies.add(sum(r.retrieved for r in separate))
    assert len(seen_frequencies) >= 4  # the thresholds really change decisions
    assert not entries[-1].can_retrieve


def test_sweep_treats_pubhealth_as_fever():
    # issue 12 item 3: the alias is closed-set in the sweep too (option scores, pooled answers)
    def entries(task):
        config = ShortFormConfig(task=task, max_new_tokens=8, weights=CritiqueWeights(1.0, 1.0, 0.5))
        return sweep_pass(scripted_lm(), config, queries())
    fever, pubhealth = entries("fever"), entries("pubhealth")
    assert all(e.retrieve["option_scores"] is not None for e in pubhealth[:-1])
    assert [e.result(t) for e in pubhealth for t in THRESHOLDS] == [
        e.result(t) for e in fever for t in THRESHOLDS]


def test_summary_counts_frequency_and_metric():
    def entry(score, yes, no):
        return SweepEntry({"answer": yes, "retrieved": True, "retrieval_probability": None,
                           "no_retrieval": None}, {"answer": no, "retrieved": False,
                                                   "retrieval_probability": score,
                                                   "no_retrieval": no}, score, True)
    entries = [entry(0.9, "Paris", "Lyon"), entry(0.4, "Rome", "Milan")]
    points, preds = summarise(entries, [0.0, 0.5, 0.95], match, [["Paris"], ["Milan"]])
    assert [(p.retrieval_frequency, p.metric_mean) for p in points] == [(1.0, 0.5), (0.5, 1.0),
                                                                        (0.0, 0.5)]
    assert preds[0.5] == ["Paris", "Milan"]


def test_cli_writes_csv_png_and_matches_run_short_form(tmp_path, tiny_model_path):
    source = tmp_path / "popqa4.jsonl"
    source.write_text("".join(POPQA.read_text().splitlines(keepends=True)[:4]))
    common = ["--model_name", tiny_model_path, "--input_file", str(source), "--device", "cpu",
              "--ndocs", "2", "--max_new_tokens", "3", "--metric", "match"]
    code = run_main(threshold_sweep.main, common + [
        "--output_csv", str(tmp_path / "sweep.csv"), "--output_json", str(tmp_path / "sweep.json"),
        "--thresholds", "0", "0.5", "1"])
    assert code == 0
    png = (tmp_path / "sweep.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 1000
    rows = list(csv.DictReader((tmp_path / "sweep.csv").open()))
    assert [float(r["threshold"]) for r in rows] == [0.0, 0.5, 1.0]
    assert float(rows[0]["retrieval_frequency"]) == 1.0 and float(rows[2]["retrieval_frequency"]) == 0.0
    sweep = json.loads((tmp_path / "sweep.json").read_text())
    assert not list(tmp_path.glob("*.partial"))
    code = run_main(run_short_form.main, common + ["--threshold", "0.5", "--output_file",
                                                   str(tmp_path / "sep.json")])
    separate = json.loads((tmp_path / "sep.json").read_text())
    middle = sweep["per_threshold"][1]
    assert code == 0 and middle["threshold"] == 0.5
    assert middle["retrieved"] == [r["retrieved"] for r in separate["all_results"]]
    assert middle["preds"] == separate["preds"]


def test_the_plot_gets_the_usual_file_mode(tmp_path):
    # issue 12 item 13: the PNG came from mkstemp (0600)
    import os
    import stat

    from selfrag.baselines.threshold_sweep import SweepPoint, plot_sweep

    old = os.umask(0o022)
    try:
        plot_sweep(tmp_path / "sweep.png", [SweepPoint(0.0, 1.0, 0.5, 2)], "match")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "sweep.png").stat().st_mode) == 0o644


ABLATION = CritiqueWeights(w_rel=0.0, use_support=False, use_utility=False, use_seqscore=True)


@pytest.mark.parametrize("task", [None, "fever"])
@pytest.mark.parametrize("weights", [ABLATION, CritiqueWeights(0.1, 0.0, 2.0, use_seqscore=True)])
def test_rescored_answers_equal_a_run_with_the_other_weights(task, weights):
    from selfrag.inference.short_form import rescore

    full = ShortFormConfig(task=task, max_new_tokens=8, weights=CritiqueWeights(1.0, 1.0, 0.5))
    other = ShortFormConfig(task=task, max_new_tokens=8, weights=weights)
    lm = scripted_lm(text_p=(0.2, 0.99))  # the sequence score prefers B, IsRel A or B
    stored, direct = sweep_pass(lm, full, queries()), sweep_pass(lm, other, queries())
    changed = 0
    for old, new in zip(stored, direct):
        again = rescore(old.retrieve, other)
        keys = ("prediction", "answer", "retrieved", "option_scores")
        assert {k: again[k] for k in keys} == {k: new.retrieve[k] for k in keys}
        assert [c["score"] for c in again["candidates"]] == pytest.approx(
            [c["score"] for c in new.retrieve["candidates"]])
        changed += again["answer"] != old.retrieve["answer"]
    assert changed  # the weights really change some answers


def test_cli_from_json_re_ranks_without_generating(tmp_path, tiny_model_path, monkeypatch):
    source = tmp_path / "popqa4.jsonl"
    source.write_text("".join(POPQA.read_text().splitlines(keepends=True)[:4]))
    common = ["--model_name", tiny_model_path, "--input_file", str(source), "--device", "cpu",
              "--ndocs", "2", "--max_new_tokens", "3", "--metric", "match"]
    seq_only = ["--use_seqscore", "--w_rel", "0"]
    assert run_main(threshold_sweep.main, common + [
        "--use_groundness", "--use_utility", "--output_csv", str(tmp_path / "full.csv"),
        "--output_json", str(tmp_path / "full.json")]) == 0
    assert run_main(threshold_sweep.main, common + seq_only + [
        "--output_csv", str(tmp_path / "direct.csv"), "--output_json",
        str(tmp_path / "direct.json")]) == 0

    import selfrag.cli

    def no_model(*args, **kwargs):
        raise AssertionError("--from_json must not load the model")

    monkeypatch.setattr(selfrag.cli, "build_lm", no_model)
    monkeypatch.setattr(threshold_sweep, "build_lm", no_model)
    assert run_main(threshold_sweep.main, common + seq_only + [
        "--from_json", str(tmp_path / "full.json"), "--output_csv", str(tmp_path / "again.csv"),
        "--output_json", str(tmp_path / "again.json")]) == 0
    assert (tmp_path / "again.csv").read_text() == (tmp_path / "direct.csv").read_text()
    again, direct = (json.loads((tmp_path / f"{n}.json").read_text()) for n in ("again", "direct"))
    assert again["per_threshold"] == direct["per_threshold"]

    # another generation setting, or a score the stored run did not compute: one clear error
    code = run_main(threshold_sweep.main, [*common[:-4], "--max_new_tokens", "4", *common[-2:],
                                           *seq_only, "--from_json", str(tmp_path / "full.json"),
                                           "--output_csv", str(tmp_path / "bad.csv")])
    assert code != 0 and not (tmp_path / "bad.csv").exists()
    code = run_main(threshold_sweep.main, common + ["--use_groundness", "--from_json",
                                                    str(tmp_path / "direct.json"),
                                                    "--output_csv", str(tmp_path / "bad.csv")])
    assert code != 0 and not (tmp_path / "bad.csv").exists()


def test_from_json_errors_name_the_file_and_field(tmp_path, tiny_model_path, capsys):
    source = tmp_path / "popqa2.jsonl"
    source.write_text("".join(POPQA.read_text().splitlines(keepends=True)[:2]))
    common = ["--model_name", tiny_model_path, "--input_file", str(source), "--ndocs", "2",
              "--max_new_tokens", "3", "--output_csv", str(tmp_path / "out.csv")]
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"metric": "match", "points": []}))
    assert run_main(threshold_sweep.main, common + ["--from_json", str(old)]) != 0
    assert f"{old}: field 'entries'" in capsys.readouterr().err
    old.write_text("{\n  oops")
    assert run_main(threshold_sweep.main, common + ["--from_json", str(old)]) != 0
    assert f"{old}, line 2: malformed JSON" in capsys.readouterr().err
    assert not (tmp_path / "out.csv").exists()
