"""A whole threshold sweep run: examples in, CSV + PNG (+ JSON) out, resumable; or the answers of
a previous sweep chosen again under other critique weights."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, replace

from selfrag.baselines.threshold_sweep import (
    SweepEntry,
    SweepPoint,
    plot_sweep,
    summarise,
    sweep_pass,
    write_csv,
)
from selfrag.errors import InputError
from selfrag.evaluation.tasks import ShortFormExample
from selfrag.inference.short_form import ShortFormQuery, rescore
from selfrag.inference.short_form_run import ShortFormRun
from selfrag.io import read_text, write_json_atomic
from selfrag.lm.base import LanguageModel
from selfrag.locks import output_lock
from selfrag.resume import run_in_chunks

#: Flags that only change how candidates are ranked: a sweep re-ranked with other values of
#: these (``--from_json``) needs no new generation.
WEIGHT_FLAGS = ("use_seqscore", "use_groundness", "use_utility", "w_rel", "w_sup", "w_use")


def run_threshold_sweep(run: ShortFormRun, lm: LanguageModel, examples: Sequence[ShortFormExample],
                        thresholds: Sequence[float], fingerprint: dict, png: str,
                        json_path: str | None = None, title: str = "",
                        retriever=None) -> list[SweepPoint]:
    """Run both passes (journaled next to ``run.output_file``), then write the CSV at
    ``run.output_file``, the plot at ``png`` and, optionally, the predictions and both branches
    of every query at ``json_path`` (what :func:`rescore_sweep` reads)."""
    with output_lock(run.output_file):
        def work(chunk: Sequence[ShortFormExample]) -> list[dict]:
            queries = [ShortFormQuery(e.prompt, e.passages, e.question) for e in chunk]
            return [asdict(e) for e in sweep_pass(lm, run.config, queries, retriever, run.ndocs,
                                                  progress=True)]

        def finish(outputs: list[dict]) -> list[SweepPoint]:
            return write_sweep(run, [SweepEntry(**e) for e in outputs], examples, thresholds,
                               fingerprint, png, json_path, title)

        return run_in_chunks(examples, work, finish, chunk_size=run.chunk_size,
                             journal_path=run.output_file + ".partial", fingerprint=fingerprint)


def rescore_sweep(run: ShortFormRun, source: str, extra_strip: Sequence[str],
                  examples: Sequence[ShortFormExample], thresholds: Sequence[float],
                  fingerprint: dict, png: str, json_path: str | None = None,
                  title: str = "") -> list[SweepPoint]:
    """The sweep stored at ``source`` (the JSON of :func:`run_threshold_sweep`) with every
    retrieving answer chosen again under ``run.config.weights``
    (:func:`~selfrag.inference.short_form.rescore`); written like a sweep.

    Raises:
        InputError: ``source`` is not such a JSON, was run with other settings (any fingerprint
            field but :data:`WEIGHT_FLAGS`, the outputs and the thresholds), or did not compute
            an IsSup/IsUse score the weights use.
    """
    try:
        previous = json.loads(read_text(source))
    except json.JSONDecodeError as err:
        raise InputError(source, f"malformed JSON: {err.msg}", line=err.lineno) from None
    except OSError as err:
        raise InputError(source, f"not readable ({err})") from None
    for name in ("entries", "fingerprint"):
        if not isinstance(previous, dict) or name not in previous:
            raise InputError(source, "not the --output_json of a sweep that stores its branches "
                             "(rerun that sweep)", field=name)
    old, fingerprint = previous["fingerprint"], as_stored(fingerprint)
    for key in sorted(set(old) | set(fingerprint)):
        if key not in WEIGHT_FLAGS and old.get(key) != fingerprint.get(key):
            raise InputError(source, f"is {old.get(key)!r}, this run has "
                             f"{fingerprint.get(key)!r}: only the critique weights may differ",
                             field=f"fingerprint.{key}")
    weights = run.config.weights
    for flag, needed in (("use_groundness", weights.use_support),
                         ("use_utility", weights.use_utility)):
        if needed and not old.get(flag):
            raise InputError(source, f"is false: the stored candidates have no score to re-rank "
                             f"with --{flag}", field=f"fingerprint.{flag}")
    entries = [SweepEntry(**e) for e in previous["entries"]]
    entries = [replace(e, retrieve=rescore(e.retrieve, run.config, extra_strip)) for e in entries]
    with output_lock(run.output_file):
        return write_sweep(run, entries, examples, thresholds, fingerprint, png, json_path, title)


def as_stored(fingerprint: dict) -> dict:
    """``fingerprint`` as it reads back from JSON (tuples become lists, paths strings)."""
    return json.loads(json.dumps(fingerprint, default=str))


def write_sweep(run: ShortFormRun, entries: Sequence[SweepEntry],
                examples: Sequence[ShortFormExample], thresholds: Sequence[float],
                fingerprint: dict, png: str, json_path: str | None, title: str) -> list[SweepPoint]:
    """CSV at ``run.output_file``, plot at ``png``, and the JSON (points, decision scores,
    predictions per threshold, both branches of every query, the fingerprint) at ``json_path``."""
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
            "fingerprint": as_stored(fingerprint),
            "entries": [asdict(e) for e in entries],
        })
    return points
