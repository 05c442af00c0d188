"""A whole short-form evaluation run: file in, scored predictions out, resumable.

Queries are processed in chunks of ``chunk_size`` (each chunk is one batched engine call). Every
finished chunk is journaled (:mod:`selfrag.resume`), so a killed run continues where it stopped;
chunk boundaries are fixed by query index, so the resumed run batches exactly as an uninterrupted
one would and writes an identical file. The output JSON is written atomically at the end.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

from selfrag.evaluation.metrics import get_metric
from selfrag.evaluation.tasks import ShortFormExample, load_short_form_examples
from selfrag.inference.prompt_fit import check_prompts_fit
from selfrag.inference.query import PassageSearch
from selfrag.inference.short_form import (
    ShortFormConfig,
    ShortFormEngine,
    ShortFormQuery,
    ShortFormResult,
)
from selfrag.io import write_json_atomic
from selfrag.lm.base import LanguageModel
from selfrag.locks import output_lock
from selfrag.resume import run_in_chunks

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShortFormRun:
    input_file: str
    output_file: str
    config: ShortFormConfig
    ndocs: int = 10
    metric: str = "match"
    chunk_size: int = 64
    #: ``metric``'s function, looked up once (an unknown metric fails here, before any loading).
    metric_function: Callable[[str, Sequence[str]], float] = field(init=False, repr=False,
                                                                   compare=False)

    def __post_init__(self):
        object.__setattr__(self, "metric_function", get_metric(self.metric))  # frozen: set once


def original_results_dict(result: ShortFormResult) -> dict:
    """Per-query results in the original's ``all_results`` layout, with our extras."""
    out: dict = {"no_retrieval": result.no_retrieval, "retrieved": result.retrieved,
                 "retrieval_probability": result.retrieval_probability}
    for i, candidate in enumerate(result.candidates):
        out[f"retrieval_{i}"] = asdict(candidate)
    if result.option_scores is not None:
        out["option_scores"] = result.option_scores
    return out


def load_run_examples(run: ShortFormRun, online_retrieval: bool = False) -> list[ShortFormExample]:
    """Validate and load the input; with ``online_retrieval`` the records' ``ctxs`` are ignored."""
    return load_short_form_examples(
        run.input_file, run.config.task, run.ndocs,
        need_passages=run.config.mode != "no_retrieval" and not online_retrieval,
        faithful=run.config.faithful, use_ctxs=not online_retrieval)


def run_short_form(run: ShortFormRun, lm: LanguageModel, examples: list[ShortFormExample],
                   fingerprint: dict, retriever: PassageSearch | None = None) -> dict:
    """Run (or resume) the evaluation and write ``run.output_file``; returns the output dict.

    With a ``retriever``, passages are searched online, only for queries that decide to retrieve.
    """
    with output_lock(run.output_file):
        check_prompts_fit(lm, run.input_file, examples, run.config.max_new_tokens)
        engine = ShortFormEngine(lm, run.config, retriever=retriever, n_docs=run.ndocs)

        def work(chunk: Sequence[ShortFormExample]) -> list[dict]:
            queries = [ShortFormQuery(e.prompt, e.passages, e.question) for e in chunk]
            return [original_results_dict(r) | {"prediction": r.answer}
                    for r in engine.run(queries, progress=True)]

        def finish(per_query: list[dict]) -> dict:
            output = assemble_output(run, examples, per_query)
            write_json_atomic(run.output_file, output)
            return output

        return run_in_chunks(examples, work, finish, chunk_size=run.chunk_size,
                             journal_path=run.output_file + ".partial", fingerprint=fingerprint)


def assemble_output(run: ShortFormRun, examples: list[ShortFormExample], per_query: list[dict]) -> dict:
    """The original ``run_short_form.py``'s output keys, with ``golds``/``scores`` filled in and the
    retrieval frequency computed over queries."""
    preds = [r.pop("prediction") for r in per_query]  # each the engine's final answer
    labelled = examples[0].answers is not None
    metric_results = ([run.metric_function(p, e.answers) for p, e in zip(preds, examples)]
                      if labelled else [])
    best_scores = [max((v["score"] for k, v in r.items() if k.startswith("retrieval_")
                        and isinstance(v, dict)), default=None) for r in per_query]
    frequency = sum(r["retrieved"] for r in per_query) / len(per_query)
    return {
        "preds": preds,
        "prompts": [e.prompt for e in examples],
        "metric_results": metric_results,
        "all_results": per_query,
        "golds": [e.answers for e in examples] if labelled else [],
        "metric": run.metric,
        "metric_mean": sum(metric_results) / len(metric_results) if labelled else None,
        "scores": best_scores,
        "retrieval_frequency": frequency,
        "task": run.config.task,  # canonical (ShortFormConfig)
    }
