"""A whole threshold sweep run: examples in, CSV + PNG (+ JSON) out, resumable."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from selfrag.baselines.threshold_sweep import (
    SweepPoint,
    plot_sweep,
    run_sweep_passes,
    summarise,
    write_csv,
)
from selfrag.evaluation.metrics import get_metric
from selfrag.evaluation.tasks import ShortFormExample
from selfrag.inference.answers import clean_prediction
from selfrag.inference.short_form import ShortFormQuery
from selfrag.inference.short_form_run import ShortFormRun
from selfrag.io import write_json_atomic
from selfrag.lm.base import LanguageModel
from selfrag.locks import output_lock


def run_threshold_sweep(run: ShortFormRun, lm: LanguageModel, examples: Sequence[ShortFormExample],
                        thresholds: Sequence[float], fingerprint: dict, png: str,
                        json_path: str | None = None, title: str = "",
                        retriever=None) -> list[SweepPoint]:
    """Run both passes (journaled next to ``run.output_file``), then write the CSV at
    ``run.output_file``, the plot at ``png`` and, optionally, the predictions at ``json_path``."""
    with output_lock(run.output_file):
        queries = [ShortFormQuery(e.prompt, e.passages, e.question) for e in examples]
        journal = run.output_file + ".partial"
        entries = run_sweep_passes(lm, run.config, queries, journal, fingerprint, run.chunk_size,
                                   retriever, run.ndocs)
        labelled = examples[0].answers is not None
        points, predictions = summarise(
            entries, thresholds, get_metric(run.metric), [e.answers for e in examples] if labelled else None,
            lambda text: clean_prediction(text, run.config.faithful))
        write_csv(run.output_file, points, run.metric)
        plot_sweep(png, points, run.metric, title)
        if json_path:
            write_json_atomic(json_path, {
                "metric": run.metric,
                "points": [p.__dict__ for p in points],
                "scores": [e.score for e in entries],
                "per_threshold": [{"threshold": t, "preds": predictions[t],
                                   "retrieved": [e.result(t)["retrieved"] for e in entries]}
                                  for t in thresholds],
            })
        Path(journal).unlink(missing_ok=True)
        return points
