"""Adaptive-retrieval threshold sweep from two passes of model outputs (paper Fig. 3).

With a threshold only the per-query retrieve/no-retrieve decision changes; both branches'
outputs do not depend on it. So the engine runs once in ``always_retrieve`` mode and once with
retrieval never taken (adaptive with an infinite threshold, which records every query's
``p(Ret)/(p(Ret)+p(NoRet))``), and each threshold ``t`` then picks, per query, the retrieval
result when ``score > t`` and the query can retrieve, else the no-retrieval one: the same
decisions and answers as separate runs with ``--threshold t`` (checked in
tests/baselines/test_threshold_sweep.py). With ``faithful`` the score is the released code's
log-prob ratio (the original ``run_short_form.py``, ``call_model_rerank_w_scores_batch``), read
from one extra single-step pass.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from selfrag.inference.decision import can_retrieve
from selfrag.inference.scoring import faithful_retrieval_ratio
from selfrag.inference.short_form import ShortFormConfig, ShortFormEngine, ShortFormQuery
from selfrag.io import set_usual_mode, write_atomic
from selfrag.lm.base import GenerationRequest, LanguageModel


@dataclass
class SweepEntry:
    """Both branches of one query and its decision score.

    Attributes:
        retrieve: the ``always_retrieve`` result (``ShortFormResult.to_dict()``).
        no_retrieve: the result when the model does not retrieve.
        score: the value compared with the threshold.
        can_retrieve: whether the query has passages (or a retriever to get them).
        faithful: results of a faithful run (which keeps the initial generation when retrieving).
    """

    retrieve: dict
    no_retrieve: dict
    score: float
    can_retrieve: bool
    faithful: bool = False

    def result(self, threshold: float) -> dict:
        """The result a separate run with ``threshold`` gives (retrieval iff score > threshold)."""
        if not (self.can_retrieve and self.score > threshold):
            return self.no_retrieve
        return {**self.retrieve, "retrieval_probability": self.no_retrieve["retrieval_probability"],
                "no_retrieval": self.no_retrieve["no_retrieval"] if self.faithful else None}


def sweep_pass(lm: LanguageModel, config: ShortFormConfig, queries: Sequence[ShortFormQuery],
               retriever=None, n_docs: int = 10, progress: bool = False) -> list[SweepEntry]:
    """Run both branches for ``queries`` (``config.mode``/``threshold`` are ignored)."""
    always = ShortFormEngine(lm, replace(config, mode="always_retrieve"), retriever, n_docs)
    never = ShortFormEngine(lm, replace(config, mode="adaptive_retrieval", threshold=math.inf),
                            retriever, n_docs)
    not_retrieved = never.run(queries, progress)  # first: its decision pass keeps the prompts'
    retrieved = always.run(queries, progress)      # caches for the passage prompts (keep_cache)
    if config.faithful:  # the released rule: log-prob ratio at the first position
        request = GenerationRequest(1, control_ids=never.control_ids)
        first = lm.generate([q.prompt for q in queries], request)
        scores = [faithful_retrieval_ratio(g.control_logprobs[0]) for g in first]
    else:
        scores = [r.retrieval_probability for r in not_retrieved]
    entries = []
    for query, yes, no, score in zip(queries, retrieved, not_retrieved, scores):
        entries.append(SweepEntry(yes.to_dict(), no.to_dict(), score,
                                  can_retrieve(query, retriever), config.faithful))
    return entries


@dataclass
class SweepPoint:
    threshold: float
    retrieval_frequency: float
    metric_mean: float | None
    n: int


def summarise(entries: Sequence[SweepEntry], thresholds: Sequence[float], metric,
              answers) -> tuple[list[SweepPoint], dict[float, list[str]]]:
    """Retrieval frequency and mean metric per threshold, and the predictions (each result's
    final ``answer``).

    Args:
        metric: ``metric(prediction, golds) -> float``.
        answers: gold answers per query, or ``None`` when unlabelled.
    """
    points, predictions = [], {}
    for t in thresholds:
        results = [e.result(t) for e in entries]
        preds = [r["answer"] for r in results]
        values = [metric(p, a) for p, a in zip(preds, answers)] if answers else []
        frequency = sum(r["retrieved"] for r in results) / len(results)
        points.append(SweepPoint(t, frequency, sum(values) / len(values) if values else None,
                                 len(results)))
        predictions[t] = preds
    return points, predictions


def write_csv(path: str | Path, points: Sequence[SweepPoint], metric_name: str) -> None:
    """``threshold,retrieval_frequency,<metric>,n`` rows, written atomically."""
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["threshold", "retrieval_frequency", metric_name, "n"])
    for p in points:
        writer.writerow([p.threshold, p.retrieval_frequency,
                         "" if p.metric_mean is None else p.metric_mean, p.n])
    write_atomic(path, buffer.getvalue())


def plot_sweep(path: str | Path, points: Sequence[SweepPoint], metric_name: str,
               title: str = "") -> None:
    """Accuracy and retrieval frequency against the threshold (paper Fig. 3 style), as PNG.

    Written to a temporary file and renamed, like every output.
    """
    import os
    import tempfile

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [p.threshold for p in points]
    fig, left = plt.subplots(figsize=(5, 3.5), dpi=120)
    if any(p.metric_mean is not None for p in points):
        left.plot(xs, [100 * (p.metric_mean or 0.0) for p in points], "o-", color="tab:blue",
                  label=metric_name)
    left.set_xlabel("retrieval threshold δ")
    left.set_ylabel(f"{metric_name} (%)", color="tab:blue")
    right = left.twinx()
    right.plot(xs, [100 * p.retrieval_frequency for p in points], "s--", color="tab:orange",
               label="retrieval frequency")
    right.set_ylabel("retrieval frequency (%)", color="tab:orange")
    right.set_ylim(-5, 105)
    if title:
        left.set_title(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".png", dir=path.parent)
    os.close(fd)
    set_usual_mode(tmp)  # mkstemp's file is owner-only
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        Path(tmp).unlink(missing_ok=True)
