"""The whole pipeline on four bundled items: output format, resume, gold judge, CLI errors."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

from gen_helpers import REPO, scripted_critic, strip_reflection

from selfrag.data_creation.generator.critic_runs import CriticJudge
from selfrag.data_creation.generator.gold_judge import JUDGE_NAME, GoldJudge
from selfrag.data_creation.generator.pipeline import PipelineConfig, run_pipeline
from selfrag.data_creation.generator.records import load_items
from selfrag.data_creation.generator.validate import tokenize_output, validate_instance
from selfrag.resume import Journal
from selfrag.tokens import REFLECTION_TOKENS

ANSWERS = {"retrieval": "[Retrieval]", "utility": "Perceived utility: 4",
           "multi_retrieval": lambda p: "[No Retrieval]" if "Final answer" in p else "[Retrieval]",
           "relevance": lambda p: "[Relevant]" if "Feilden" in p.split("Evidence:")[-1]
           else "[Irrelevant]",
           "groundness": "[Fully supported]"}


def _read(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_pipeline_output_has_the_released_format(tmp_path, items_file, small_retriever):
    lm = scripted_critic(ANSWERS)
    config = PipelineConfig(str(items_file), str(tmp_path / "work"), n_docs=3, top_n=3)
    summary = run_pipeline(config, CriticJudge(lm, "scripted-critic"), small_retriever)
    records = _read(tmp_path / "work" / "generator_data.jsonl")
    items = {i["id"]: i for i in load_items(items_file)}
    assert summary["kept"] == len(records) == 4 and summary["judge"] == "scripted-critic"
    assert summary["invalid_outputs"] == 0 and summary["splitter"]
    for record in records:
        assert validate_instance(record, strict=True) == [], record["output"]
        assert set(record) == {"instruction", "output", "input", "id", "dataset_name", "judge"}
        assert record["judge"] == "scripted-critic"
        # token by token: only reflection tokens and text, the utility token last
        pieces = tokenize_output(record["output"])
        assert pieces[-1] == "[Utility:4]"
        assert all(p in REFLECTION_TOKENS or "[" not in p for p in pieces)
        # the output's own text comes back when the tokens and passages are removed
        assert strip_reflection(record["output"]) == items[record["id"]]["output"]
    popqa = next(r for r in records if r["dataset_name"] == "popqa")
    assert "[Relevant]" in popqa["output"] and "Feilden" in popqa["output"]
    # every step left an inspectable JSONL
    for name in ("01_retrieval_input_only", "02_utility", "03_initial_queries",
                 "04_initial_retrieval", "05_sentences", "06_multi_retrieval",
                 "07_sentence_retrieval", "08_prompt_data", "09_relevance", "10_groundness"):
        assert (tmp_path / "work" / f"{name}.jsonl").is_file()


def test_rerun_skips_finished_steps_and_resumes_a_cut_critic_step(tmp_path, items_file,
                                                                   small_retriever):
    work = tmp_path / "work"
    config = PipelineConfig(str(items_file), str(work), n_docs=3, top_n=3)
    first = scripted_critic(ANSWERS)
    run_pipeline(config, CriticJudge(first, "c", batch_size=4), small_retriever)
    expected = (work / "generator_data.jsonl").read_text()
    # Nothing to redo: no critic call at all.
    idle = scripted_critic(ANSWERS)
    run_pipeline(config, CriticJudge(idle, "c", batch_size=4), small_retriever)
    assert idle.calls == []
    # Simulate a kill during step 09: its output is gone, its journal holds one batch and a
    # torn line; later steps are stale.
    n_pairs = len(_read(work / "08_prompt_data.jsonl"))
    (work / "09_relevance.jsonl").unlink()
    journal = work / ".journals" / "09_relevance.jsonl"
    prompts = [p for call in first.calls for p in call]
    rel_prompts = [p for p in prompts if "evidence is relevant" in p]
    unique = list(dict.fromkeys(rel_prompts))
    resumed = scripted_critic(ANSWERS)
    judge = CriticJudge(resumed, "c", batch_size=4)
    # the journal the interrupted run would have left (same fingerprint as the real run)
    digest = hashlib.sha256("\x00".join(unique).encode()).hexdigest()[:16]
    partial = Journal(journal, {**judge.fingerprint(), "task": "relevance", "prompts": digest,
                                "max_new_tokens": 15, "batch_size": 4})
    partial.append({"start": 0, "preds": [ANSWERS["relevance"](p) for p in unique[:4]]})
    with journal.open("a") as handle:
        handle.write('{"start": 4, "pre')  # torn by the kill
    run_pipeline(config, judge, small_retriever)
    relevance_calls = [p for p in resumed.prompts_seen if "evidence is relevant" in p]
    assert len(relevance_calls) == len(unique) - 4 and n_pairs >= len(unique)
    assert (work / "generator_data.jsonl").read_text() == expected
    assert not journal.exists()


def test_gold_judge_runs_offline_and_marks_every_record(tmp_path, small_retriever):
    items = []
    for line in (REPO / "eval_data/popqa_longtail_w_gs.head100.jsonl").read_text().splitlines()[:3]:
        record = json.loads(line)
        items.append({"instruction": record["question"],
                      "output": f"He was a {record['answers'][0]} in England.",
                      "id": f"popqa_{record['id']}", "dataset_name": "popqa",
                      "answers": record["answers"]})
    path = tmp_path / "popqa.jsonl"
    path.write_text("".join(json.dumps(i) + "\n" for i in items))
    summary = run_pipeline(PipelineConfig(str(path), str(tmp_path / "w"), n_docs=4, top_n=4),
                           GoldJudge(items, path), small_retriever)
    assert summary["judge"] == JUDGE_NAME
    for name in ("01_retrieval_input_only", "02_utility", "09_relevance"):
        assert {r["judge"] for r in _read(tmp_path / "w" / f"{name}.jsonl")} == {JUDGE_NAME}
    records = _read(tmp_path / "w" / "generator_data.jsonl")
    assert records and all(r["judge"] == JUDGE_NAME for r in records)
    assert all(validate_instance(r, strict=True) == [] for r in records)
    first = records[0]["output"]  # Henry Feilden: his own passage is in the small corpus
    assert first.startswith("[Retrieval]<paragraph>") and "[Relevant]" in first
    assert "[Fully supported]" in first and first.endswith("[Utility:5]")


def test_tiny_random_critic_runs_through_the_hf_backend(tmp_path, items_file, small_retriever):
    from selfrag.lm import load_lm

    lm = load_lm("hf", "tiny-random-llama", device="cpu", batch_size=8)
    config = PipelineConfig(str(items_file), str(tmp_path / "w"), n_docs=2, top_n=2)
    summary = run_pipeline(config, CriticJudge(lm, "tiny-random-llama", max_new_tokens=4,
                                               batch_size=8), small_retriever)
    # A random critic writes no labels: everything is counted as unparseable, nothing guessed.
    steps = summary["critic_steps"]
    assert steps["01_retrieval_input_only"]["records"] == 4
    assert summary["kept"] == 0 and summary["assembly"]["dropped"]
    assert sum(s["unparseable"] for s in steps.values()) >= 4


def test_bad_input_is_one_located_error_and_nothing_is_written(tmp_path):
    bad = tmp_path / "items.jsonl"
    bad.write_text('{"instruction": "Q", "output": "A", "id": "x"}\n{"instruction": "Q", "id": "y"}\n')
    result = subprocess.run(
        [sys.executable, str(REPO / "data_creation/generator/run_pipeline.py"), "--input_file",
         str(bad), "--work_dir", str(tmp_path / "w"), "--judge", "gold", "--demo_retriever"],
        check=False, capture_output=True, text=True)
    assert result.returncode == 2
    assert f"{bad}, line 2: field 'output': missing" in result.stderr
    assert not (tmp_path / "w").exists()
