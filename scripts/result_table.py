r"""Gather Self-RAG and baseline run outputs into one markdown table shaped like the paper's
Table 2 (rows = methods, columns = tasks), optionally next to the paper's numbers.

    python scripts/result_table.py \
        --run "Self-RAG (ours, smollm2)" popqa out/popqa.json \
        --run "Llama2-style + ret. (ours)" popqa out/baseline_popqa.jsonl match \
        --paper --paper_rows "Self-RAG 7B" "Llama2 7B + ret." --output out/table2.md

Each ``--run`` is METHOD TASK FILE [METRIC]: a run_short_form.py JSON or a run_baseline_lm.py
JSONL; with METRIC (match/accuracy/em/f1) the score is recomputed from predictions and golds.
``--manifest`` reads the same from a JSON list of {"method", "task", "path", "metric"}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from selfrag.baselines.postprocess import BASELINE_METRICS
from selfrag.baselines.tables import PAPER_TABLE2, render_table, score_run
from selfrag.cli import flag_error, run_main
from selfrag.errors import InputError
from selfrag.io import read_text, write_atomic


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", nargs="+", action="append", default=[], metavar="ARG",
                   help="METHOD TASK FILE [METRIC] (repeatable)")
    p.add_argument("--manifest", type=str, default=None,
                   help="JSON list of {method, task, path, metric?} (paths relative to it)")
    p.add_argument("--paper", action="store_true", help="add the paper's Table 2 rows")
    p.add_argument("--paper_rows", nargs="+", default=None, metavar="NAME",
                   help=f"only these paper rows (of: {', '.join(PAPER_TABLE2)})")
    p.add_argument("--all_columns", action="store_true",
                   help="every Table 2 column, not only the tasks that have runs")
    p.add_argument("--output", type=str, default=None, help="markdown file (default: stdout)")
    return p


def run_specs(args) -> list[tuple[str, str, str, str | None]]:
    specs = []
    for values in args.run:
        if len(values) not in (3, 4):
            raise flag_error("--run", f"expects METHOD TASK FILE [METRIC], got {values}")
        specs.append((values[0], values[1], values[2], values[3] if len(values) == 4 else None))
    if args.manifest:
        base = Path(args.manifest).parent
        try:
            entries = json.loads(read_text(args.manifest))
        except (OSError, json.JSONDecodeError) as err:
            raise InputError(args.manifest, f"not a readable JSON list ({err})") from None
        for number, entry in enumerate(entries if isinstance(entries, list) else [None], start=1):
            if not isinstance(entry, dict) or not {"method", "task", "path"} <= set(entry):
                raise InputError(args.manifest, "needs method, task and path", line=number)
            specs.append((entry["method"], entry["task"], str(base / entry["path"]),
                          entry.get("metric")))
    return specs


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    runs = []
    for method, task, path, metric in run_specs(args):
        if metric is not None and metric not in BASELINE_METRICS:
            raise flag_error("--run", f"metric {metric!r} is not one of {BASELINE_METRICS}")
        try:
            runs.append(score_run(method, task, path, metric))
        except ValueError as err:
            raise flag_error("--run", str(err)) from None
    paper_rows = list(PAPER_TABLE2) if args.paper and not args.paper_rows else (args.paper_rows or [])
    unknown = [name for name in paper_rows if name not in PAPER_TABLE2]
    if unknown:
        raise flag_error("--paper_rows", f"unknown {unknown}; choose from {list(PAPER_TABLE2)}")
    if not runs and not paper_rows:
        raise flag_error("--run", "give at least one run (or --paper)")
    table = render_table(runs, paper_rows, args.all_columns)
    if args.output:
        write_atomic(args.output, table)
    print(table, end="")


if __name__ == "__main__":
    sys.exit(run_main(main))
