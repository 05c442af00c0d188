"""Result tables in the shape of the paper's Table 2 from run output files.

Reads run_short_form.py outputs (one JSON object with ``preds``/``golds``/``metric_results``)
and run_baseline_lm.py outputs (JSONL records with ``output``/``golds``/``metric_result``).
A score is the mean per-query metric x 100, as the paper reports; with a metric given, it is
recomputed from the predictions and golds so that every row is scored the same way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from selfrag.baselines.postprocess import baseline_metric
from selfrag.errors import InputError
from selfrag.io import read_records, read_text

#: Paper Table 2 columns: key and header.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("popqa", "PopQA"), ("triviaqa", "TQA"), ("pubhealth", "Pub"), ("arc_c", "ARC"),
    ("bio", "Bio"), ("asqa_em", "ASQA em"), ("asqa_rouge", "rg"), ("asqa_mauve", "mau"),
    ("asqa_prec", "pre"), ("asqa_rec", "rec"),
)
TASK_ALIASES = {"fever": "pubhealth", "health": "pubhealth", "arc": "arc_c", "tqa": "triviaqa",
                "factscore": "bio", "asqa": "asqa_em"}

_T2_KEYS = [key for key, _ in COLUMNS]
_T2_ROWS = {  # paper Table 2; None = not reported
    "Llama2-chat 13B": (20.0, 59.3, 49.4, 38.4, 55.9, 22.4, 29.6, 28.6, None, None),
    "Ret-Llama2-chat 13B": (51.8, 59.8, 52.1, 37.9, 79.9, 32.8, 34.8, 43.8, 19.8, 36.1),
    "ChatGPT": (29.3, 74.3, 70.1, 75.3, 71.8, 35.3, 36.2, 68.8, None, None),
    "Ret-ChatGPT": (50.8, 65.7, 54.7, 75.3, None, 40.7, 39.9, 79.7, 65.1, 76.6),
    "Perplexity.ai": (None, None, None, None, 71.2, None, None, None, None, None),
    "Llama2 7B": (14.7, 30.5, 34.2, 21.8, 44.5, 7.9, 15.3, 19.0, None, None),
    "Alpaca 7B": (23.6, 54.5, 49.8, 45.0, 45.8, 18.8, 29.4, 61.7, None, None),
    "Llama2 13B": (14.7, 38.5, 29.4, 29.4, 53.4, 7.2, 12.4, 16.0, None, None),
    "Alpaca 13B": (24.4, 61.3, 55.5, 54.9, 50.2, 22.9, 32.0, 70.6, None, None),
    "CoVE 65B*": (None, None, None, None, 71.2, None, None, None, None, None),
    "Toolformer 6B*": (None, 48.8, None, None, None, None, None, None, None, None),
    "Llama2 7B + ret.": (38.2, 42.5, 30.0, 48.0, 78.0, 15.2, 22.1, 32.0, 2.9, 4.0),
    "Alpaca 7B + ret.": (46.7, 64.1, 40.2, 48.0, 76.6, 30.9, 33.3, 57.9, 5.5, 7.2),
    "Llama2-FT 7B + ret.": (48.7, 57.3, 64.3, 65.8, 78.2, 31.0, 35.8, 51.2, 5.0, 7.5),
    "SAIL 7B*": (None, None, 69.2, 48.4, None, None, None, None, None, None),
    "Llama2 13B + ret.": (45.7, 47.0, 30.2, 26.0, 77.5, 16.3, 20.5, 24.7, 2.3, 3.6),
    "Alpaca 13B + ret.": (46.1, 66.9, 51.1, 57.6, 77.7, 34.8, 36.7, 56.6, 2.0, 3.8),
    "Self-RAG 7B": (54.9, 66.4, 72.4, 67.3, 81.2, 30.0, 35.7, 74.3, 66.9, 67.8),
    "Self-RAG 13B": (55.8, 69.3, 74.5, 73.1, 80.2, 31.7, 37.0, 71.6, 70.3, 71.3),
}
PAPER_TABLE2: dict[str, dict[str, float]] = {
    method: {k: v for k, v in zip(_T2_KEYS, values) if v is not None}
    for method, values in _T2_ROWS.items()
}


def canonical_column(task: str) -> str:
    """A task name (``popqa``, ``fever``, ``arc_c``, ...) as a Table 2 column key."""
    key = TASK_ALIASES.get(task.lower(), task.lower())
    if key not in _T2_KEYS:
        raise ValueError(f"unknown task {task!r}; choose from {', '.join(_T2_KEYS)} "
                         f"(or {', '.join(TASK_ALIASES)})")
    return key


@dataclass
class RunScore:
    method: str
    column: str
    score: float
    n: int
    metric: str
    path: str


def _pairs(path: Path) -> tuple[list[str], list[list[str]], list[float], str | None]:
    """(predictions, golds, stored metric results, stored metric name) of one output file."""
    if path.suffix == ".json":
        try:
            data = json.loads(read_text(path))
        except json.JSONDecodeError as err:
            raise InputError(path, "not a run_short_form output (one JSON object expected): "
                             f"malformed JSON: {err.msg}", line=err.lineno) from None
        except OSError as err:
            raise InputError(path, f"not a readable run_short_form output ({err})") from None
        if not isinstance(data, dict) or "preds" not in data:
            raise InputError(path, "not a run_short_form output (no 'preds')")
        return data["preds"], data.get("golds") or [], data.get("metric_results") or [], data.get("metric")
    preds, golds, results, name = [], [], [], None
    for line, record in read_records(path, allow_empty=False):
        if "output" not in record:
            raise InputError(path, "not a run_baseline_lm output", line, "output")
        preds.append(str(record["output"]))
        golds.append(record.get("golds") or [])
        if record.get("metric_result") is not None:
            results.append(float(record["metric_result"]))
        name = record.get("metric", name)
    return preds, golds, results, name


def score_run(method: str, task: str, path: str | Path, metric: str | None = None) -> RunScore:
    """Score one output file: its stored per-query metric, or ``metric`` recomputed.

    Raises:
        ValueError: unknown task.
        InputError: unreadable file, or no gold answers to score.
    """
    column = canonical_column(task)  # an unknown task fails before any file is read
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    preds, golds, stored, stored_name = _pairs(path)
    if metric is not None:
        scorer = baseline_metric(metric)
        values = [scorer(p, g) for p, g in zip(preds, golds) if g]
    else:
        values, metric = stored, stored_name or "stored"
    if not values:
        raise InputError(path, "no scored queries (no gold answers?)")
    return RunScore(method, column, 100 * sum(values) / len(values), len(values),
                    metric, str(path))


def render_table(runs: Sequence[RunScore], paper_rows: Sequence[str] = (),
                 all_columns: bool = False) -> str:
    """Markdown: one row per method (ours first, then the paper's), Table 2 column order."""
    used = {r.column for r in runs}
    columns = [(k, h) for k, h in COLUMNS if all_columns or k in used or (not runs and paper_rows)]
    methods: dict[str, dict[str, str]] = {}
    for run in runs:
        methods.setdefault(run.method, {})[run.column] = f"{run.score:.1f}"
    for name in paper_rows:
        cells = PAPER_TABLE2[name]
        methods[f"{name} (paper)"] = {k: f"{cells[k]:.1f}" for k, _ in columns if k in cells}
    lines = ["| method | " + " | ".join(h for _, h in columns) + " |",
             "|---|" + "---|" * len(columns)]
    for method, cells in methods.items():
        lines.append(f"| {method} | " + " | ".join(cells.get(k, "–") for k, _ in columns) + " |")
    if runs:
        lines += ["", "| method | task | metric | n | file |", "|---|---|---|---|---|"]
        lines += [f"| {r.method} | {r.column} | {r.metric} | {r.n} | `{r.path}` |" for r in runs]
    return "\n".join(lines) + "\n"
