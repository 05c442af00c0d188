"""The results table of the small-scale reproduction: ``results.md`` and ``results.json``."""

from __future__ import annotations

import json
import platform
from dataclasses import asdict

from selfrag.io import write_atomic, write_json_atomic
from selfrag.reproduce.measurements import CRITIC_GATE
from selfrag.reproduce.stages import git_commit

#: Paper Table 2 (Asai et al., 2024), 7B models: PopQA acc, PubHealth acc, ARC-Challenge acc.
PAPER_7B = {
    "Alpaca 7B (no retrieval)": (23.6, 49.8, 45.0),
    "Alpaca 7B + retrieval": (46.7, 40.2, 48.0),
    "Self-RAG 7B": (54.9, 72.4, 67.3),
}
TASKS = ("popqa", "pubhealth", "arc_c")
ROWS = (
    ("base_vanilla", "base model, no retrieval (`run_baseline_lm.py --mode vanilla`)"),
    ("base_retrieval", "base model, standard RAG: top passages in the prompt (`--mode retrieval`)"),
    ("selfrag_no_retrieval", "Self-RAG (ours), no retrieval"),
    ("selfrag_adaptive", "Self-RAG (ours), adaptive retrieval (δ from validation)"),
    ("selfrag_always", "Self-RAG (ours), always retrieve"),
    ("ablation_seqscore_adaptive", "ablation: no critique scores (sequence score only), adaptive"),
    ("ablation_seqscore_always", "ablation: no critique scores (sequence score only), always"),
)


def _cell(row: dict | None) -> str:
    if not row or row.get("score") is None:
        return "–"
    return f"{100 * row['score']:.1f} ({100 * row['retrieval']:.0f}%)"


def write_results(experiment) -> dict:
    """Collect every stage's summary into the table; returns the JSON written."""
    records = experiment.runner.records
    summary = {name: record["summary"] for name, record in records.items()}
    evaluation = summary["evaluation"]
    data = {
        "commit": git_commit(), "machine": f"{platform.machine()}, {platform.processor() or ''}",
        "sizes": asdict(experiment.sizes), "seed": experiment.seed,
        "stage_seconds": {name: record["seconds"] for name, record in records.items()},
        "thresholds": summary["validation"]["thresholds"],
        "rows": {key: {task: evaluation.get(f"{key}/{task}") for task in TASKS} for key, _ in ROWS},
        "sweep": {task: evaluation.get(f"sweep/{task}") for task in TASKS},
        "critic_agreement": per_type(summary["critic_eval"]),
        "critic_agreement_by_dataset": summary["critic_eval"].get("by_group", {}),
        "critic_confusion": summary["critic_eval"].get("confusion"),
        "critic_agreement_heldout": summary["critic_eval"].get("heldout"),
        "generator_data": summary["generator_data"], "critic_labels": summary["critic_labels"],
        "critic_training": summary["critic"], "generator_training": summary["generator"],
        "decisions": summary["decisions"], "splits": summary["splits"],
    }
    mixed = summary["validation"].get("popqa_validation_no_knowledge", 0)
    lines = [
        "# Small-scale Self-RAG: results",
        "",
        f"Base model `{experiment.sizes.base_model}`; commit `{data['commit']}`. Cells: metric "
        "(retrieval frequency). PopQA: match; PubHealth: accuracy; ARC-Challenge: match. "
        f"{experiment.sizes.eval_ndocs} passages per query; thresholds chosen on validation: "
        + ", ".join(f"{t} δ={v}" for t, v in data["thresholds"].items()) + "."
        + (f" PopQA's validation split also held {mixed} no-knowledge instructions (with retrieved "
           "passages), so that δ_PopQA weighs retrieving for knowledge questions against "
           "derailing prompts that need none." if mixed else ""),
        "",
        "| system | PopQA | PubHealth | ARC-C |",
        "|---|---|---|---|",
    ]
    for key, label in ROWS:
        cells = [_cell(data["rows"][key][task]) for task in TASKS]
        if any(c != "–" for c in cells):
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", ("Paper, Table 2 (7B models, 2018 Wikipedia, a different scale — for orientation "
                   "only):"), "", "| system | PopQA | PubHealth | ARC-C |", "|---|---|---|---|"]
    lines += [f"| {name} | " + " | ".join(f"{v:.1f}" for v in values) + " |"
              for name, values in PAPER_7B.items()]
    heldout = data["critic_agreement_heldout"]
    lines += ["", "## Critic agreement with the teacher", "",
              "Dev: the labels held out of the critic's SFT sample (the gate reads these)"
              + ("; held-out: more teacher labels no critic stage used, balanced." if heldout
                 else "."), ""]
    lines += agreement_table(data["critic_agreement"], data["critic_agreement_by_dataset"],
                             per_type(heldout) if heldout else None,
                             heldout.get("by_group", {}) if heldout else None)
    lines += ["", "## Retrieval decisions (share of queries with p(Retrieval) ratio > δ_PopQA)", "",
              "| prompts | n | retrieves | mean ratio |", "|---|---|---|---|"]
    lines += [f"| {name} | {v['n']} | {100 * v['retrieves']:.0f}% | {v['mean_p_retrieval']:.3f} |"
              for name, v in data["decisions"].items()]
    gd, critic, generator = (data["generator_data"], data["critic_training"],
                             data["generator_training"])
    lines += ["", "## Data and training", "",
              (f"- generator instances: {gd['instances']} ({gd['critic_labelled']} labelled by the "
               f"critic = {100 * gd['critic_share']:.1f}% of the pipeline's instances, "
               f"{gd['teacher_labelled']} by the teacher, {gd['released']} released Self-RAG "
               f"instances); [No Retrieval] {gd['no_retrieval']}, [Relevant] {gd['relevant']}, "
               f"[Irrelevant] {gd['irrelevant']}"),
              (f"- critic gate (IsRel and IsSup agreement on the dev split >= {CRITIC_GATE:.0%}): "
               + ("passed, the critic's labels are used" if gd.get("critic_gate_passed") else
                  f"not passed, so the teacher labelled every item; the critic's labels of "
                  f"{data['critic_labels']['items']} items are in critic_share/ for inspection")),
              (f"- critic: {critic['steps']} steps, loss {critic['first_loss']} -> "
               f"{critic['last_loss']}"),
              (f"- generator: {generator['steps']} steps, loss {generator['first_loss']} -> "
               f"{generator['last_loss']}"),
              "", "## Wall time per stage", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {name} | {seconds:.0f} |" for name, seconds in data["stage_seconds"].items()]
    write_atomic(experiment.path("results.md"), "\n".join(lines) + "\n")
    write_json_atomic(experiment.path("results.json"), data, indent=1)
    print("\n".join(lines))
    return {"markdown": str(experiment.path("results.md")),
            "json": str(experiment.path("results.json")),
            "rows": json.loads(json.dumps(data["rows"]))}


def per_type(scores: dict) -> dict:
    """The per-type entries of :func:`selfrag.reproduce.measurements.tally`'s result."""
    return {k: v for k, v in scores.items() if k not in ("confusion", "by_group", "heldout")}


def agreement_table(dev: dict, dev_groups: dict, heldout: dict | None = None,
                    heldout_groups: dict | None = None) -> list[str]:
    """Markdown rows: each type, then each type and dataset; a dev and (if any) held-out column.

    A critic that learned only each dataset's usual label agrees on a dataset about as often as
    that label occurs there.
    """
    def cell(scores: dict, key: str) -> str:
        v = scores.get(key)
        return f"{100 * v['agreement']:.1f}% (n {v['n']})" if v else "–"

    columns = [(dev, dev_groups)] + ([(heldout, heldout_groups or {})] if heldout else [])
    rows = ["| type | dev |" + (" held-out |" if heldout else ""), "|---|" + "---|" * len(columns)]
    for part in (0, 1):  # the types, then the types by dataset
        keys = sorted(set().union(*(column[part] for column in columns)))
        rows += [f"| {key} | " + " | ".join(cell(column[part], key) for column in columns) + " |"
                 for key in keys]
    return rows
