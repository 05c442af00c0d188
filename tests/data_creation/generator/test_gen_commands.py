"""The generator-data commands run as commands: flags, files written, resume, located errors.

Each command's main path runs in a subprocess (``sys.executable``, cwd = the repository root).
Checks that need to see the prompts or to count model calls call the same ``main(argv)``
in-process with the critic LM replaced by a scripted one (loading a model per check would not fit
the time budget of this file).
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from gen_helpers import CORPUS, POPQA, REPO, scripted_critic

from selfrag.data_creation.critic.templates import ALPACA_WITH_INPUT
from selfrag.data_creation.generator.gold_judge import JUDGE_NAME
from selfrag.data_creation.generator.validate import RECORD_FIELDS, validate_instance
from selfrag.tokens import NO_RETRIEVAL, RETRIEVAL

SCRIPTS = REPO / "data_creation" / "generator"
ALPACA_HEAD = ALPACA_WITH_INPUT.split("{instruction}")[0]  # preamble + "### Instruction:\n"


def _run(script: str, *args, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, str(SCRIPTS / script), *map(str, args)], cwd=REPO,
                            capture_output=True, text=True, check=False, timeout=300)
    if check:
        assert result.returncode == 0, result.stderr[-3000:]
    return result


def _load_script(name: str):
    """An entry point's module, imported from its file (its ``main(argv)`` returns the status)."""
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    spec = importlib.util.spec_from_file_location(f"_gen_cmd_{name}", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def _write_json(path: Path, records) -> Path:
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def _leftovers(folder: Path) -> list[str]:
    """Temporary files an atomic write or the original's ``_tmp`` saving would leave."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp") or "_tmp" in p.name)


# ------------------------------------------------------------------------ run_reward_vllm.py
def _items(n: int) -> list[dict]:
    return [{"instruction": f"Question number {i}?", "output": f"Answer {i}.", "input": "",
             "id": f"popqa_{i}", "dataset_name": "popqa", "extra": i} for i in range(n)]


def test_reward_command_saves_every_item_including_the_remainder_batch(tmp_path, tiny_model_path):
    items = _items(23)
    source = _write_jsonl(tmp_path / "items.jsonl", items)
    result_fp = tmp_path / "out" / "ret.json"
    run = _run("run_reward_vllm.py", "--input_file", source, "--model_name", tiny_model_path,
               "--device", "cpu", "--dtype", "float32", "--task", "retrieval",
               "--result_fp", result_fp, "--batch_size", 10, "--max_new_tokens", 3)
    records = json.loads(result_fp.read_text(encoding="utf-8"))
    assert len(records) == 23  # 10 + 10 + 3: the original lost the last 3
    for item, record in zip(items, records):
        assert {k: record[k] for k in item} == item  # a copy of the item ...
        assert isinstance(record["pred"], str)       # ... plus its prediction
        assert record["judge"] == tiny_model_path
    # a random critic writes no label: counted, never guessed
    assert all(r["label"] is None for r in records) and "23 predictions" in run.stdout
    assert _leftovers(result_fp.parent) == [] and sorted(
        p.name for p in result_fp.parent.iterdir()) == ["ret.json"]  # journal removed


@pytest.fixture()
def reward(monkeypatch):
    """``run_reward_vllm.main`` with every model load replaced by the scripted critic given."""
    module = _load_script("run_reward_vllm")
    box = {}
    monkeypatch.setattr("selfrag.cli.build_lm", lambda args, seed: box["lm"])

    def run(lm, *argv):
        box["lm"] = lm
        return module.main([str(a) for a in argv])

    return run


def _retrieval_critic(fail_after: int | None = None):
    lm = scripted_critic({"retrieval": lambda p: RETRIEVAL if "number 1" in p else NO_RETRIEVAL})
    if fail_after is not None:
        generate = lm.generate

        def failing(prompts, request, *rest, **kw):
            if len(lm.calls) >= fail_after:
                raise KeyboardInterrupt  # the run is killed during this batch
            return generate(prompts, request, *rest, **kw)

        lm.generate = failing
    return lm


def test_reward_rerun_with_previous_results_predicts_only_the_missing_items(tmp_path, reward):
    source = _write_jsonl(tmp_path / "items.jsonl", _items(23))
    full, part = tmp_path / "full.json", tmp_path / "part.json"
    lm = _retrieval_critic()
    base = ["--input_file", source, "--model_name", "scripted", "--task", "retrieval",
            "--batch_size", 10]
    assert reward(lm, *base, "--result_fp", full) == 0
    expected = json.loads(full.read_text())
    assert [len(c) for c in lm.calls] == [10, 10, 3]
    # the first 13 saved earlier: only the last 10 are predicted
    _write_json(part, expected[:13])
    again = _retrieval_critic()
    assert reward(again, *base, "--result_fp", tmp_path / "r2.json", "--prev_result_fp", part) == 0
    assert again.prompts_seen == [p for call in lm.calls for p in call][13:]
    assert json.loads((tmp_path / "r2.json").read_text()) == expected
    # everything saved: no prediction at all, and the file stays the same
    idle = _retrieval_critic()
    assert reward(idle, *base, "--result_fp", full, "--prev_result_fp", full) == 0
    assert idle.calls == [] and json.loads(full.read_text()) == expected


def test_reward_run_killed_midway_writes_nothing_and_resumes_from_its_journal(tmp_path, reward):
    source = _write_jsonl(tmp_path / "items.jsonl", _items(23))
    result_fp = tmp_path / "ret.json"
    argv = ["--input_file", source, "--model_name", "scripted", "--task", "retrieval",
            "--batch_size", 10, "--result_fp", result_fp]
    with pytest.raises(KeyboardInterrupt):
        reward(_retrieval_critic(fail_after=1), *argv)
    assert not result_fp.exists() and _leftovers(tmp_path) == []
    assert Path(str(result_fp) + ".journal.jsonl").is_file()
    resumed = _retrieval_critic()
    assert reward(resumed, *argv) == 0
    assert [len(c) for c in resumed.calls] == [10, 3]  # batch 1 came from the journal
    records = json.loads(result_fp.read_text())
    assert [r["label"] for r in records[:3]] == [NO_RETRIEVAL, RETRIEVAL, NO_RETRIEVAL]
    assert len(records) == 23 and not Path(str(result_fp) + ".journal.jsonl").exists()


def test_reward_journal_of_another_critic_model_is_refused(tmp_path, reward, capsys):
    # issue 12 item 1: a critic retrained into the same folder resumed the old critic's replies
    critic = tmp_path / "critic"
    critic.mkdir()
    (critic / "model.safetensors").write_bytes(b"weights v1")
    source = _write_jsonl(tmp_path / "items.jsonl", _items(23))
    argv = ["--input_file", source, "--model_name", critic, "--task", "retrieval",
            "--batch_size", 10, "--result_fp", tmp_path / "ret.json"]
    with pytest.raises(KeyboardInterrupt):
        reward(_retrieval_critic(fail_after=1), *argv)
    (critic / "model.safetensors").write_bytes(b"weights v2")
    assert reward(_retrieval_critic(), *argv) == 2
    assert "(different: model (other weights or files));" in capsys.readouterr().err
    assert not (tmp_path / "ret.json").exists()


def test_reward_faithful_queries_with_the_alpaca_preamble(tmp_path, reward):
    sentences = [{"instruction": "Who is Henry Feilden?", "target_output": "He was a politician.",
                  "evidence": "Henry Feilden\nA British politician.", "preceding_sentences": None,
                  "q_id": "popqa_1", "sent_idx": 1}]
    source = _write_jsonl(tmp_path / "sent.jsonl", sentences)
    argv = ["--input_file", source, "--model_name", "scripted", "--task", "multi_retrieval",
            "--inst_mode", "retrieval_multi_instruction", "--input_mode", "retrieval_multi_input"]
    ours, faithful = scripted_critic({"multi_retrieval": RETRIEVAL}), scripted_critic(
        {"multi_retrieval": RETRIEVAL})
    assert reward(ours, *argv, "--result_fp", tmp_path / "a.json") == 0
    assert reward(faithful, *argv, "--faithful", "--result_fp", tmp_path / "b.json") == 0
    (prompt,), (alpaca,) = ours.prompts_seen, faithful.prompts_seen
    assert prompt.startswith("### Instruction:\n") and "Below is an instruction" not in prompt
    assert "None" not in prompt
    assert alpaca.startswith(ALPACA_HEAD) and ALPACA_HEAD.startswith("Below is an instruction")
    assert "\n\n### Input:\nTask instruction: Who is Henry Feilden?\n" in alpaca
    assert "Preceding sentences: None" in alpaca and alpaca.endswith("\n\n### Response:")


def test_reward_bad_inputs_are_located_errors(tmp_path, reward, capsys):
    bad_json = tmp_path / "items.jsonl"
    bad_json.write_text('{"instruction": "Q"}\n{"instruction": "R"}\n{"instruction": \n')
    result = _run("run_reward_vllm.py", "--input_file", bad_json, "--model_name", "never-loaded",
                  "--task", "retrieval", "--result_fp", tmp_path / "r.json", check=False)
    assert result.returncode == 2 and result.stderr.count("error:") == 1
    assert f"error: {bad_json}, line 3: malformed JSON" in result.stderr
    # a field the task's template needs: named with its line, nothing written
    pairs = _write_jsonl(tmp_path / "pairs.jsonl", [
        {"instruction": "Q", "evidence": "E"}, {"instruction": "Q2"}])
    lm = scripted_critic({"relevance": "[Relevant]"})
    assert reward(lm, "--input_file", pairs, "--model_name", "scripted", "--task", "relevance",
                  "--result_fp", tmp_path / "r.json") == 2
    assert f"{pairs}, line 2: field 'evidence'" in capsys.readouterr().err
    assert lm.calls == [] and sorted(p.name for p in tmp_path.iterdir()) == [
        "items.jsonl", "pairs.jsonl"]


# ------------------------------------------------------------------ create_retrieval_data.py
RET_ITEMS = [
    {"instruction": "Who is Henry Feilden?", "input": "",
     "output": "Henry Feilden was a British Conservative politician. He sat in the House of "
               "Commons for Blackburn.", "id": "popqa_1", "dataset_name": "popqa"},
    {"instruction": "Is the following statement correct or not? Say true if it's correct; "
                    "otherwise say false.## Input:\n\nParis is in France.", "input": "",
     "output": "true", "id": "fever_2", "dataset_name": "fever"},
    {"instruction": "Write a greeting.", "input": "to Ann", "output": "Hello Ann, nice to meet "
     "you today. Ok. I hope you have a wonderful and relaxing day.", "id": "alpaca_3",
     "dataset_name": "gpt4_alpaca"},
]
SENTENCE_FIELDS = {"question", "answers", "output", "target_output", "instruction",
                   "preceding_sentences", "q_id", "sent_idx", "evidence", "dataset_name"}


def test_create_retrieval_data_queries_and_sentence_instances(tmp_path):
    items = _write_jsonl(tmp_path / "items.jsonl", RET_ITEMS)
    queries_fp = tmp_path / "queries.jsonl"
    _run("create_retrieval_data.py", "--input_files", items, "--output_file", queries_fp)
    queries = _jsonl(queries_fp)
    assert queries[0] == {"question": "Who is Henry Feilden? " + RET_ITEMS[0]["output"],
                          "answers": [RET_ITEMS[0]["output"]], "q_id": "popqa_1",
                          "dataset_name": "popqa"}
    assert queries[1]["question"] == "Paris is in France. true"  # task instruction stripped
    assert not Path(str(queries_fp) + "_splitted").exists()

    # step 5: fever_2 needs no retrieval; popqa_1 and alpaca_3 do
    preds = _write_json(tmp_path / "ret.json", [
        {**RET_ITEMS[0], "pred": RETRIEVAL}, {**RET_ITEMS[1], "pred": NO_RETRIEVAL},
        {**RET_ITEMS[2], "pred": "[Retrieval]"}])
    ctxs = [{"title": "Henry Feilden", "text": "Henry Master Feilden was a politician.",
             "score": 2.0}, {"title": "Other", "text": "Other text.", "score": 1.0}]
    initial = _write_jsonl(tmp_path / "initial.jsonl",
                           [{**q, "ctxs": ctxs if q["q_id"] == "popqa_1" else []}
                            for q in queries])
    out = tmp_path / "sentences.jsonl"
    _run("create_retrieval_data.py", "--multiple_sent", "--input_files", items,
         "--need_retrieval_files", preds, "--initial_retrieval_file", initial,
         "--output_file", out, "--splitter", "sentencizer")
    sentences, splitted = _jsonl(out), _jsonl(Path(str(out) + "_splitted"))
    assert all(set(s) == SENTENCE_FIELDS for s in sentences)
    # "Ok." is short in a 3-sentence output: skipped, not an instance
    assert [(s["q_id"], s["sent_idx"]) for s in sentences] == [
        ("popqa_1", 0), ("popqa_1", 1), ("alpaca_3", 0), ("alpaca_3", 2)]
    first, second = sentences[0], sentences[1]
    assert first["target_output"] == "Henry Feilden was a British Conservative politician."
    assert first["preceding_sentences"] is None and second["preceding_sentences"] == \
        first["target_output"]
    assert second["question"] == "Who is Henry Feilden? He sat in the House of Commons for " \
                                 "Blackburn."
    assert first["evidence"] == "Henry Feilden\nHenry Master Feilden was a politician."
    assert sentences[2]["instruction"] == "Write a greeting. to Ann" and \
        sentences[2]["evidence"] is None
    assert [s["q_id"] for s in splitted] == ["popqa_1", "alpaca_3"]
    assert splitted[1]["splitted_output"] == ["Hello Ann, nice to meet you today.", "Ok.",
                                              "I hope you have a wonderful and relaxing day."]
    assert splitted[1]["skipped"] == {"0": False, "1": True, "2": False}
    assert {"q_id", "dataset_name", "instruction", "output", "splitted_output",
            "skipped"} <= set(splitted[0])


def test_create_retrieval_data_bad_item_is_located_and_nothing_written(tmp_path):
    items = _write_jsonl(tmp_path / "items.jsonl", [RET_ITEMS[0], {**RET_ITEMS[1], "output": 3}])
    out = tmp_path / "queries.jsonl"
    result = _run("create_retrieval_data.py", "--input_files", items, "--output_file", out,
                  check=False)
    assert result.returncode == 2
    assert f"error: {items}, line 2: field 'output': must be a string, got int" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["items.jsonl"]


# --------------------------------------------------------------------- create_prompt_data.py
def _sentence(q_id: str, k: int, n_ctxs: int) -> dict:
    return {"q_id": q_id, "sent_idx": k, "instruction": f"Question {q_id}",
            "output": "Whole output.", "target_output": f"Sentence {k} of {q_id}.",
            "preceding_sentences": None if k == 0 else "Earlier.", "dataset_name": "popqa",
            "question": "q", "ctxs": [{"title": f"T{i}", "text": f"text {i}", "score": 1.0 - i}
                                      for i in range(n_ctxs)]}


def test_create_prompt_data_writes_every_pair_across_the_batch_files(tmp_path):
    sentences = _write_jsonl(tmp_path / "sent.jsonl", [
        _sentence("a", 0, 2), _sentence("a", 1, 2), _sentence("a", 2, 2), _sentence("b", 0, 4)])
    multi = _write_json(tmp_path / "multi.json", [
        {"q_id": "a", "sent_idx": 1, "pred": "[Retrieval]"},
        {"q_id": "a", "sent_idx": 2, "pred": "[No Retrieval]"}])
    out = tmp_path / "pairs"
    run = _run("create_prompt_data.py", "--input_file", sentences, "--output_dir", out,
               "--num_jobs", 3, "--top_n", 3, "--multi_need_retrieval_pred_file", multi)
    batches = [_jsonl(out / f"prompt_data_batch_{j}.jsonl") for j in range(3)]
    assert sorted(p.name for p in out.iterdir()) == [f"prompt_data_batch_{j}.jsonl"
                                                     for j in range(3)]
    # a#0: 2 pairs, a#1: 2, a#2: none ([No Retrieval]), b#0: top 3 of 4 -> 7 pairs, 7 = 3+2+2
    assert [len(b) for b in batches] == [3, 2, 2] and "7 pairs" in run.stdout
    pairs = [p for batch in batches for p in batch]
    assert [(p["q_id"], p["sent_idx"], p["p_idx"]) for p in pairs] == [
        ("a", 0, 0), ("a", 0, 1), ("a", 1, 0), ("a", 1, 1), ("b", 0, 0), ("b", 0, 1), ("b", 0, 2)]
    assert pairs[-1]["evidence"] == "T2\ntext 2" and pairs[-1]["target_output"] == "Sentence 0 of b."
    assert {"id", "instruction", "output", "evidence", "p_idx", "target_output",
            "preceding_sentences", "sent_idx"} <= set(pairs[0])


def test_create_prompt_data_bad_sentence_is_located_and_nothing_written(tmp_path):
    bad = _sentence("a", 1, 2)
    del bad["ctxs"]
    sentences = _write_jsonl(tmp_path / "sent.jsonl", [_sentence("a", 0, 2), bad])
    result = _run("create_prompt_data.py", "--input_file", sentences, "--output_dir",
                  tmp_path / "pairs", "--num_jobs", 3, check=False)
    assert result.returncode == 2
    assert f"error: {sentences}, line 2: field 'ctxs': missing" in result.stderr
    assert not (tmp_path / "pairs").exists()


# ----------------------------------------------------------------------- postprocess_data.py
FEILDEN = {"instruction": "Who is Henry Feilden?", "input": "", "id": "popqa_1",
           "dataset_name": "popqa",
           "output": "Henry Feilden was a British politician. He sat for Blackburn."}
GREETING = {"instruction": "Write a greeting.", "input": "", "id": "alpaca_2",
            "dataset_name": "gpt4_alpaca", "output": "Hello there!"}
CLAIM = {"instruction": "Is it true? Paris is in France.", "input": "", "id": "fever_3",
         "dataset_name": "fever", "output": "SUPPORTS"}


def _postprocess_inputs(folder: Path) -> list[str]:
    """Hand-written critic results for three items (paper mode outputs computed in the test)."""
    items = [FEILDEN, GREETING, CLAIM]
    files = {
        "orig_input_data": _write_jsonl(folder / "items.jsonl", items),
        "retrieval_i_only": _write_json(folder / "ret.json", [
            {**FEILDEN, "pred": "[Retrieval]"}, {**GREETING, "pred": "[No Retrieval]"},
            {**CLAIM, "pred": "[Retrieval]"}]),
        "utility_pred": _write_json(folder / "utility.json", [
            {**FEILDEN, "pred": "[Utility:5]"}, {**GREETING, "pred": "Perceived utility: 4"},
            {**CLAIM, "pred": "[Utility:5]"}]),
        "splitted_input_data": _write_jsonl(folder / "sent.jsonl_splitted", [
            {"q_id": "popqa_1", "splitted_output": ["Henry Feilden was a British politician.",
                                                    "He sat for Blackburn."],
             "separators": [" ", ""], "skipped": {"0": False, "1": False}},
            {"q_id": "fever_3", "splitted_output": ["SUPPORTS"], "separators": [""],
             "skipped": {"0": False}}]),
        "retrieval_multi": _write_json(folder / "multi.json", [
            {"q_id": "popqa_1", "sent_idx": 1, "pred": "[No Retrieval]"}]),
        "relevance_pred": _write_json(folder / "rel.json", [
            {"q_id": "popqa_1", "sent_idx": 0, "p_idx": 0, "title": "Blackburn",
             "text": "A town.", "score": 2.0, "pred": "[Irrelevant]"},
            {"q_id": "popqa_1", "sent_idx": 0, "p_idx": 1, "title": "Henry Feilden",
             "text": "A politician.", "score": 1.5, "pred": "[Relevant]"},
            {"q_id": "fever_3", "sent_idx": 0, "p_idx": 0, "title": "Paris",
             "text": "Paris is the capital of France.", "score": 1.0, "pred": "Relevant"}]),
        "groudness_pred": _write_json(folder / "sup.json", [
            {"q_id": "popqa_1", "sent_idx": 0, "p_idx": 1, "pred": "[Fully supported]"},
            {"q_id": "fever_3", "sent_idx": 0, "p_idx": 0, "pred": "[Partially supported]"}]),
        "retrieval_data": _write_jsonl(folder / "sent.jsonl", [
            {"q_id": "popqa_1", "sent_idx": 0, "ctxs": []}]),
    }
    return [arg for flag, path in files.items() for arg in (f"--{flag}", str(path))]


def test_postprocess_writes_the_released_format(tmp_path):
    args = _postprocess_inputs(tmp_path)
    out = tmp_path / "out" / "generator_data"
    run = _run("postprocess_data.py", *args, "--output_fn", out)
    records = json.loads(Path(f"{out}.json").read_text())
    assert _jsonl(Path(f"{out}.jsonl")) == records
    assert [r["output"] for r in records] == [
        ("[Retrieval]<paragraph>Henry Feilden\nA politician.</paragraph>[Relevant]Henry Feilden "
         "was a British politician.[Fully supported] [No Retrieval]He sat for Blackburn."
         "[Utility:5]"),
        "[No Retrieval]Hello there![Utility:4]",
        ("[Retrieval]<paragraph>Paris\nParis is the capital of France.</paragraph>[Relevant]true"
         "[Partially supported][Utility:5]")]
    for record in records:
        assert validate_instance(record, strict=True) == []
        assert set(record) == set(RECORD_FIELDS) | {"judge"} and record["judge"] == "critic"
        assert record["input"] == ""
    summary = json.loads(Path(f"{out}.summary.json").read_text())
    assert summary["kept"] == 3 and summary["invalid_outputs"] == 0 and summary["mode"] == "paper"
    assert json.loads(run.stdout)["kept"] == 3
    assert _leftovers(out.parent) == []


def test_postprocess_same_seed_same_output_and_faithful_runs(tmp_path):
    args = _postprocess_inputs(tmp_path)
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        _run("postprocess_data.py", *args, "--output_fn", out, "--faithful", "--seed", 7)
    first, second = (Path(f"{o}.jsonl").read_text() for o in outs)
    assert first == second and first
    records = _jsonl(Path(f"{outs[0]}.jsonl"))
    assert all(validate_instance(r) == [] for r in records)
    # faithful: sentences joined without their separators, REFUTES/SUPPORTS replaced
    feilden = next(r["output"] for r in records if r["id"] == "popqa_1")
    assert "[Fully supported][No Retrieval]He sat" in feilden
    assert json.loads(Path(f"{outs[0]}.summary.json").read_text())["mode"] == "faithful"


def test_postprocess_bad_prediction_file_is_located_and_nothing_written(tmp_path):
    args = _postprocess_inputs(tmp_path)
    rel = tmp_path / "rel.json"
    records = json.loads(rel.read_text())
    del records[1]["p_idx"]
    _write_json(rel, records)
    result = _run("postprocess_data.py", *args, "--output_fn", tmp_path / "out" / "gen",
                  check=False)
    assert result.returncode == 2 and result.stderr.count("error:") == 1
    assert f"error: {rel}, line 2: field 'p_idx': missing" in result.stderr
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------- run_pipeline.py
@pytest.fixture(scope="module")
def small_index_files(tmp_path_factory) -> tuple[Path, Path]:
    """The first 40 corpus passages and their MiniLM embeddings, as --passages files."""
    from selfrag.retrieval.embeddings import generate_shard
    from selfrag.retrieval.encoder import Encoder
    from selfrag.retrieval.passages import load_passages

    folder = tmp_path_factory.mktemp("small_index")
    passages = load_passages(CORPUS)[:40]
    passages_fp = _write_jsonl(folder / "passages.jsonl", passages)
    generate_shard(passages, Encoder.load(device="cpu", fp16=False), folder / "embeddings",
                   batch_size=16, source=str(passages_fp))
    return passages_fp, folder / "embeddings" / "passages_*"


def test_run_pipeline_gold_judge_end_to_end_and_rerun_is_a_no_op(tmp_path, small_index_files):
    items = []
    for line in POPQA.read_text(encoding="utf-8").splitlines()[:2]:
        record = json.loads(line)
        items.append({"instruction": record["question"], "input": "",
                      "output": f"He was a {record['answers'][0]}. He lived in England.",
                      "id": f"popqa_{record['id']}", "dataset_name": "popqa",
                      "answers": record["answers"]})
    source = _write_jsonl(tmp_path / "popqa.jsonl", items)
    passages, embeddings = small_index_files
    work = tmp_path / "work"
    argv = ["--input_file", source, "--work_dir", work, "--judge", "gold", "--passages",
            passages, "--passages_embeddings", embeddings, "--n_docs", 3, "--top_n", 3,
            "--splitter", "sentencizer"]
    first = _run("run_pipeline.py", *argv)
    output = work / "generator_data.jsonl"
    records = _jsonl(output)
    assert [r["id"] for r in records] == [i["id"] for i in items]
    assert json.loads(work.joinpath("generator_data.json").read_text()) == records
    for record in records:
        assert validate_instance(record, strict=True) == [], record["output"]
        assert record["judge"] == JUDGE_NAME
    summary = json.loads((work / "summary.json").read_text())
    assert summary["judge"] == JUDGE_NAME and summary["kept"] == 2
    assert summary["invalid_outputs"] == 0 and json.loads(first.stdout)["kept"] == 2
    assert "step 11_assembly: running" in first.stderr
    stamps = {p.name: p.stat().st_mtime_ns for p in (work / ".steps").iterdir()}
    before = output.stat().st_mtime_ns
    # the same command again: every step is current, nothing is run or rewritten
    second = _run("run_pipeline.py", *argv)
    assert second.stderr.count("outputs are current, skipped") == len(stamps) == 13
    assert ": running" not in second.stderr
    assert output.stat().st_mtime_ns == before and _jsonl(output) == records
    assert {p.name: p.stat().st_mtime_ns for p in (work / ".steps").iterdir()} == stamps
    assert json.loads(second.stdout) == json.loads(first.stdout)
