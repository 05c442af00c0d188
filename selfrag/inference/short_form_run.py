"""A whole short-form evaluation run: file in, scored predictions out, resumable.

Queries are processed in chunks of ``chunk_size`` (each chunk is one batched engine call). Every
finished chunk is journaled (:mod:`selfrag.resume`), so a killed run continues where it stopped;
chunk boundaries are fixed by query index, so the resumed run batches exactly as an uninterrupted
one would and writes an identical file. The output JSON is written atomically at the end.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

from tqdm.auto import tqdm

from selfrag.evaluation.metrics import get_metric
from selfrag.evaluation.tasks import ShortFormExample, load_short_form_examples
from selfrag.inference.answers import clean_prediction
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
from selfrag.resume import Journal

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ShortFormRun:
    input_file: str
    output_file: str
    config: ShortFormConfig
    ndocs: int = 10
    metric: str = "match"
    chunk_size: int = 64


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
    get_metric(run.metric)  # fail early on an unknown metric
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
        journal = Journal(run.output_file + ".partial", fingerprint)
        done = {unit["chunk"]: unit["results"] for unit in journal.load()}
        chunks = [list(range(s, min(s + run.chunk_size, len(examples))))
                  for s in range(0, len(examples), run.chunk_size)]
        with tqdm(total=len(examples), desc="queries", unit="q") as bar:
            for number, chunk in enumerate(chunks):
                if number not in done:
                    queries = [ShortFormQuery(examples[i].prompt, examples[i].passages,
                                              examples[i].question) for i in chunk]
                    results = engine.run(queries, progress=True)
                    done[number] = [original_results_dict(r) | {"prediction": r.prediction}
                                    for r in results]
                    journal.append({"chunk": number, "results": done[number]})
                bar.update(len(chunk))
        per_query = [r for number in range(len(chunks)) for r in done[number]]
        output = assemble_output(run, examples, per_query)
        write_json_atomic(run.output_file, output)
        journal.remove()
        return output


def assemble_output(run: ShortFormRun, examples: list[ShortFormExample], per_query: list[dict]) -> dict:
    """The original ``run_short_form.py``'s output keys, with ``golds``/``scores`` filled in and the
    retrieval frequency computed over queries."""
    metric = get_metric(run.metric)
    preds = [clean_prediction(r.pop("prediction"), run.config.faithful) for r in per_query]
    labelled = examples[0].answers is not None
    metric_results = [metric(p, e.answers) for p, e in zip(preds, examples)] if labelled else []
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
