"""Pieces of the reproduction: item building, sampling, threshold choice, the stage runner."""

import json
import random
from collections import Counter

import pytest

from selfrag.errors import SelfRagError
from selfrag.evaluation.tasks import load_short_form_examples
from selfrag.reproduce.experiment import (
    balanced_sample,
    choose_threshold,
    eval_record,
    pool_item,
)
from selfrag.reproduce.stages import StageRunner, run_command


def test_pool_items_carry_the_evaluation_instruction(tmp_path):
    arc = {"id": "m1", "question": "Which?", "choices": {"label": ["1", "2"], "text": ["x", "y"]},
           "answerKey": "2"}
    claim = {"id": "7", "question": "Water is wet.", "answers": ["true"]}
    popqa = {"id": "9", "question": "Who is Z?", "answers": ["a", "b"]}
    for task, record, flag in (("arc_c", arc, "arc_c"), ("pubhealth", claim, "fever"),
                               ("popqa", popqa, None)):
        path = tmp_path / f"{task}.jsonl"
        path.write_text(json.dumps(eval_record(task, record)) + "\n")
        example = load_short_form_examples(path, flag, ndocs=1, need_passages=False)[0]
        item = pool_item(task, record)
        assert item["instruction"] == example.instruction
        assert item["output"] == example.answers[0]
    assert pool_item("arc_c", arc)["output"] == "B"
    assert pool_item("pubhealth", claim)["dataset_name"] == "fever"


def test_balanced_sample_alternates_labels_up_to_the_cap():
    records = [{"label": "A", "i": i} for i in range(10)] + [{"label": "B", "i": i} for i in range(3)]
    chosen = balanced_sample(records, 8, random.Random(0))
    labels = [r["label"] for r in chosen]
    assert len(chosen) == 8 and labels.count("B") == 3 and labels.count("A") == 5
    assert len(balanced_sample(records, 100, random.Random(0))) == 13


def test_balanced_sample_can_balance_labels_within_each_dataset():
    from operator import itemgetter

    kinds = ([("popqa", "R")] * 8 + [("popqa", "I")] * 2
             + [("fever", "R")] * 2 + [("fever", "I")] * 8)
    records = [{"dataset_name": d, "label": label, "i": i} for i, (d, label) in enumerate(kinds)]
    overall = balanced_sample(records, 8, random.Random(0))
    strata = balanced_sample(records, 8, random.Random(0), itemgetter("dataset_name", "label"))
    count = Counter((r["dataset_name"], r["label"]) for r in strata)
    assert count == {("popqa", "R"): 2, ("popqa", "I"): 2, ("fever", "R"): 2, ("fever", "I"): 2}
    assert Counter(r["label"] for r in overall) == {"R": 4, "I": 4}
    # The default stratum is the label: the same draws as before strata existed.
    assert overall == balanced_sample(records, 8, random.Random(0), itemgetter("label"))


def test_choose_threshold_best_metric_then_least_retrieval():
    points = {-1.0: (1.0, 0.9), 0.0: (1.0, 0.5), 0.2: (0.8, 0.6), 0.4: (0.5, 0.6), 1.0: (0.0, 0.1),
              2.0: (0.0, 0.1)}
    assert choose_threshold(points) == 0.4  # -1 and 2 are not candidates


def test_command_line_critic_settings_change_only_the_critic_sizes():
    from dataclasses import asdict

    from selfrag.reproduce.__main__ import parser, sizes_from
    from selfrag.reproduce.experiment import FULL

    flags = ["out", "--critic_labels", "IsRel=160,IsSup=110,Retrieve=30", "--critic_lr", "1e-4",
             "--critic_layers", "0", "--no-critic_stratify"]
    sizes = asdict(sizes_from(parser().parse_args(flags)))
    wanted = {"critic_caps": {"rel_file": 160, "multi_ground_file": 110, "ret_file": 30,
                              "ut_file": FULL.critic_caps["ut_file"]},
              "critic_lr": 1e-4, "critic_layers": None, "critic_stratify": False}
    assert {k: sizes[k] for k in wanted} == wanted
    assert {k for k, v in sizes.items() if v != asdict(FULL)[k]} <= wanted.keys()
    smoke = sizes_from(parser().parse_args(["out", "--smoke", "--critic_stratify",
                                            "--critic_layers", "2"]))
    assert smoke.critic_stratify and smoke.critic_layers == 2
    assert smoke.base_model == "tiny-random-llama"
    with pytest.raises(SystemExit):
        parser().parse_args(["out", "--critic_labels", "IsGood=3"])


def test_stage_runner_skips_done_stages_and_reruns_what_follows_a_change(tmp_path):
    calls = []

    def stage(name):
        def body():
            calls.append(name)
            return {"name": name}
        return body

    def run(setting):
        runner = StageRunner(tmp_path, log=lambda m: None)
        runner.run("a", {"x": setting}, stage("a"))
        runner.run("b", {}, stage("b"))
        return runner

    run(1)
    assert calls == ["a", "b"]
    runner = run(1)
    assert calls == ["a", "b"] and runner.records["b"]["summary"] == {"name": "b"}
    run(2)  # a's setting changed: a and everything after it run again
    assert calls == ["a", "b", "a", "b"]
    (tmp_path / ".stages" / "a.json").unlink()  # a deleted marker reruns a, then b
    run(2)
    assert calls == ["a", "b", "a", "b", "a", "b"]


def test_a_stage_resumes_only_its_own_interrupted_run(tmp_path):
    """Checkpoints left by a run of other settings are cleared; an interrupted run's are kept."""
    seen = []

    def body(crash=False):
        def run():
            work = tmp_path / "work"
            seen.append(sorted(p.name for p in work.glob("*")) if work.is_dir() else [])
            work.mkdir(exist_ok=True)
            (work / f"checkpoint-{len(seen)}").write_text("")
            if crash:
                raise RuntimeError("killed")
            return {}
        return run

    runner = StageRunner(tmp_path, log=lambda m: None)
    with pytest.raises(RuntimeError):
        runner.run("train", {"lr": 1}, body(crash=True), fresh=("work",))
    StageRunner(tmp_path, log=lambda m: None).run("train", {"lr": 1}, body(), fresh=("work",))
    assert seen == [[], ["checkpoint-1"]]  # the same settings resumed
    StageRunner(tmp_path, log=lambda m: None).run("train", {"lr": 2}, body(), fresh=("work",))
    assert seen[-1] == []  # other settings: the earlier run's checkpoints are gone
    assert sorted(p.name for p in (tmp_path / "work").glob("*")) == ["checkpoint-3"]


def test_run_command_failure_names_the_script_and_shows_the_log(tmp_path):
    script = tmp_path / "fails.py"
    script.write_text("import sys\nprint('something went wrong')\nsys.exit(3)\n")
    with pytest.raises(SelfRagError, match=r"fails.py failed \(exit 3\)[\s\S]*something went wrong"):
        run_command([script], tmp_path / "log.txt")


def test_critic_agreement_per_type_and_per_dataset():
    from selfrag.reproduce.measurements import tally

    rel = {"task": "relevance", "output": "[Relevant]"}
    irr = {"task": "relevance", "output": "[Irrelevant]"}
    sup = {"task": "groundness", "output": "[Fully supported]"}
    # The critic says [Relevant] for every PopQA passage and [Irrelevant] for every claim's.
    instances = [rel, irr, rel, rel, irr, sup]
    replies = ["[Relevant]", "[Relevant]", "[Relevant]", "[Irrelevant]", "[Irrelevant]",
               "[Partially supported]"]
    groups = ["popqa", "popqa", "popqa", "fever", "fever", "popqa"]
    result = tally(instances, replies, groups)
    assert result["IsRel"] == {"n": 5, "agree": 3, "agreement": 0.6}
    assert result["IsSup"] == {"n": 1, "agree": 0, "agreement": 0.0}
    assert result["by_group"] == {
        "IsRel fever": {"n": 2, "agree": 1, "agreement": 0.5},
        "IsRel popqa": {"n": 3, "agree": 2, "agreement": 0.6667},
        "IsSup popqa": {"n": 1, "agree": 0, "agreement": 0.0}}
    assert result["confusion"]["IsRel: [Irrelevant] -> [Relevant]"] == 1
    assert result["confusion"]["IsSup: [Fully supported] -> [Partially supported]"] == 1
    assert "by_group" not in tally(instances, replies)
    with pytest.raises(ValueError):  # a reply missing is an error, not a shorter tally
        tally(instances, replies[:-1])
