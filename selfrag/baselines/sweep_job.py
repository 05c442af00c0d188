"""A whole threshold sweep run: examples in, CSV + PNG (+ JSON) out, resumable."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from selfrag.baselines.threshold_sweep import (
    SweepEntry,
    SweepPoint,
    plot_sweep,
    summarise,
    sweep_pass,
    write_csv,
)
from selfrag.evaluation.tasks import ShortFormExample
from selfrag.inference.short_form import ShortFormQuery
from selfrag.inference.short_form_run import ShortFormRun
from selfrag.io import write_json_atomic
from selfrag.lm.base import LanguageModel
from selfrag.locks import output_lock
from selfrag.resume import run_in_chunks


def run_threshold_sweep(run: ShortFormRun, lm: LanguageModel, examples: Sequence[ShortFormExample],
                        thresholds: Sequence[float], fingerprint: dict, png: str,
                        json_path: str | None = None, title: str = "",
                        retriever=None) -> list[SweepPoint]:
    """Run both passes (journaled next to ``run.output_file``), then write the CSV at
    ``run.output_file``, the plot at ``png`` and, optionally, the predictions at ``json_path``."""
    with output_lock(run.output_file):
        def work(chunk: Sequence[ShortFormExample]) -> list[dict]:
            queries = [ShortFormQuery(e.prompt, e.passages, e.question) for e in chunk]
            return [asdict(e) for e in sweep_pass(lm, run.config, queries, retriever, run.ndocs,
                                                  progress=True)]

        def finish(outputs: list[dict]) -> list[SweepPoint]:
            entries = [SweepEntry(**e) for e in outputs]
            labelled = examples[0].answers is not None
            points, predictions = summarise(entries, thresholds, run.metric_function,
                                            [e.answers for e in examples] if labelled else None)
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
            return points

        return run_in_chunks(examples, work, finish, chunk_size=run.chunk_size,
                             journal_path=run.output_file + ".partial", fingerprint=fingerprint)
