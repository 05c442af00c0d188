"""The whole small-scale experiment with tiny-random-llama on a handful of items per stage.

Checks that the stages connect and write the results table, and that a rerun skips every stage.
The numbers mean nothing (a random model); ~3 minutes on 2 CPU cores.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
STAGES = ["splits", "evidence", "teacher", "critic_data", "critic", "critic_eval", "critic_labels",
          "generator_data", "generator", "merge", "validation", "evaluation", "decisions", "results"]


def _run(out: Path, *extra: str) -> str:
    done = subprocess.run([sys.executable, "-m", "selfrag.reproduce", str(out), "--smoke", *extra],
                          cwd=ROOT, capture_output=True, text=True, timeout=1200,
                          check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def test_smoke_run_connects_every_stage_and_resumes(tmp_path):
    out = tmp_path / "exp"
    first = _run(out)
    for stage in STAGES:
        assert f"[{stage}] finished" in first
    results = json.loads((out / "results.json").read_text())
    assert set(results["stage_seconds"]) == set(STAGES) - {"results"}  # written by "results"
    for row in ("base_vanilla", "base_retrieval", "selfrag_no_retrieval", "selfrag_adaptive",
                "selfrag_always"):
        for task in ("popqa", "pubhealth", "arc_c"):
            cell = results["rows"][row][task]
            assert cell["score"] is not None and 0 <= cell["score"] <= 1
    assert results["rows"]["selfrag_always"]["popqa"]["retrieval"] == 1.0
    assert results["rows"]["selfrag_no_retrieval"]["popqa"]["retrieval"] == 0.0
    assert results["rows"]["base_retrieval"]["popqa"]["retrieval"] == 1.0
    assert set(results["critic_agreement"]) <= {"IsRel", "IsSup", "IsUse", "Retrieve"}
    heldout = results["critic_agreement_heldout"]
    assert {"IsRel", "IsSup"} <= set(heldout)
    for types, by_dataset in ((results["critic_agreement"], results["critic_agreement_by_dataset"]),
                              ({k: heldout[k] for k in ("IsRel", "IsSup")}, heldout["by_group"])):
        for name, v in types.items():  # every instance found its dataset
            parts = [g for key, g in by_dataset.items() if key.split()[0] == name]
            assert sum(g["n"] for g in parts) == v["n"]
        assert all(key.split()[1] in {"popqa", "fever", "arc_c", "no_knowledge"}
                   for key in by_dataset)
    # The held-out labels are not in the critic's SFT data.
    train_inputs = {r["input"] for r in
                    json.loads((out / "critic_data/critic_train.json").read_text())}
    heldout_inputs = {r["input"] for r in
                      json.loads((out / "critic_data/heldout/critic_heldout.json").read_text())}
    assert heldout_inputs and not heldout_inputs & train_inputs
    data = results["generator_data"]
    assert data["instances"] == data["critic_labelled"] + data["teacher_labelled"] + data["released"]
    assert data["no_retrieval"] > 0
    assert (out / "eval" / "selfrag_popqa.png").is_file()
    assert "| system | PopQA | PubHealth | ARC-C |" in (out / "results.md").read_text()
    # The training items are the pool's, never a test question.
    tests = {json.loads(x)["question"] for x in
             (ROOT / "eval_data/popqa_longtail_w_gs.head100.jsonl").read_text().splitlines()}
    items = [json.loads(x) for x in (out / "data/items.jsonl").read_text().splitlines()]
    assert not {i["instruction"] for i in items} & tests

    # PopQA's validation split: its questions plus no-knowledge instructions, all with passages.
    mixed = [json.loads(x) for x in
             (out / "data/val_ctxs/val_popqa_and_no_knowledge.jsonl").read_text().splitlines()]
    assert len(mixed) == 4 + 4 and all(len(r["ctxs"]) == 3 for r in mixed)
    assert not {r["question"] for r in mixed} & {i["instruction"] for i in items}

    again = _run(out)
    assert all(f"[{stage}] done before" in again for stage in STAGES)
    # A generator setting reruns the generator and what follows, nothing before it.
    changed = _run(out, "--gen_epochs", "2")
    cut = STAGES.index("generator")
    assert all(f"[{stage}] done before" in changed for stage in STAGES[:cut])
    assert all(f"[{stage}] finished" in changed for stage in STAGES[cut:])

    # Shipping: the fp16 adapter merged into the base gives the experiment's merged model.
    import torch
    from transformers import AutoModelForCausalLM

    from selfrag.offline_models import load_lora_model
    from selfrag.reproduce.ship import ship

    target = ship(out, tmp_path / "shipped")
    card = (target / "README.md").read_text()
    assert "## Scores" in card and "| system | PopQA | PubHealth | ARC-C |" in card
    shipped, tokenizer = load_lora_model(str(target), base_model="tiny-random-llama")
    merged = AutoModelForCausalLM.from_pretrained(out / "generator" / "merged")
    ids = tokenizer("### Instruction:\nWho is X?\n\n### Response:\n", return_tensors="pt").input_ids
    with torch.no_grad():
        a, b = shipped(ids).logits, merged(ids).logits
    assert torch.allclose(a, b, atol=1e-2), (a - b).abs().max()

    # A critic study: critic settings rerun the critic stages, and --until stops after them.
    study = _run(out, "--critic_epochs", "2", "--until", "critic_eval")
    cut = STAGES.index("critic")
    assert all(f"[{stage}] done before" in study for stage in STAGES[:cut])
    assert "[critic] finished" in study and "[critic_eval] finished" in study
    assert "[critic_labels]" not in study
    study = _run(out, "--critic_epochs", "2", "--critic_stratify", "--until", "critic_eval")
    assert "[teacher] done before" in study and "[critic_data] finished" in study
    # The 2-epoch critic left checkpoint-5; the new data's critic starts afresh, not from it.
    last_training = (out / "logs/critic.log").read_text().split("$ ")[-1]
    assert "checkpoint-5" in (out / "logs/critic.log").read_text()
    assert "resumed from" not in last_training
