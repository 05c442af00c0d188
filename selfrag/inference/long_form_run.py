"""A whole long-form run: ASQA/ELI5 (ALCE format) or FactScore (JSONL), resumable.

Chunks of queries go through the batched engine; each finished chunk is journaled so a killed run
continues where it stopped and writes the same file. Outputs are written atomically.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from selfrag.evaluation.asqa import asqa_rouge_l, str_em
from selfrag.evaluation.long_form_tasks import LongFormExample, load_long_form_examples
from selfrag.inference.long_form import LongFormConfig, LongFormEngine, LongFormQuery
from selfrag.inference.long_form_output import asqa_output, factscore_output
from selfrag.inference.prompt_fit import check_prompts_fit
from selfrag.inference.query import PassageSearch
from selfrag.io import write_json_atomic, write_jsonl_atomic
from selfrag.lm.base import LanguageModel
from selfrag.locks import output_lock
from selfrag.resume import run_in_chunks


@dataclass(frozen=True)
class LongFormRun:
    input_file: str
    output_file: str
    task: str
    config: LongFormConfig
    chunk_size: int = 16


def load_run_examples(run: LongFormRun, online_retrieval: bool = False) -> list[LongFormExample]:
    """Validate and load the input, each item's passages cut to ``run.config.ndocs``; with
    ``online_retrieval`` the items' ``docs``/``ctxs`` are ignored."""
    return load_long_form_examples(
        run.input_file, run.task, run.config.ndocs,
        need_passages=run.config.mode != "no_retrieval" and not online_retrieval,
        use_docs=not online_retrieval)


def _record(engine: LongFormEngine, task: str, example: LongFormExample, result) -> dict:
    intermediate = result.to_dict()
    if task == "factscore":
        item = example.item
        return {"input": item.get("input", example.question),
                "output": factscore_output(engine, result),
                "topic": item.get("topic"), "cat": item.get("cat"), "intermediate": intermediate}
    output, docs = asqa_output(engine, result, example.passages)
    return example.item | {"output": output, "docs": docs, "intermediate": intermediate}


def run_long_form(run: LongFormRun, lm: LanguageModel, examples: list[LongFormExample],
                  fingerprint: dict, retriever: PassageSearch | None = None) -> list[dict]:
    """Run (or resume) and write ``run.output_file``; returns the output records."""
    with output_lock(run.output_file):
        check_prompts_fit(lm, run.input_file, examples, run.config.max_new_tokens,
                          "docs" if examples and "docs" in examples[0].item else "ctxs")
        engine = LongFormEngine(lm, run.config, retriever)

        def work(chunk: Sequence[LongFormExample]) -> list[dict]:
            queries = [LongFormQuery(e.prompt, e.passages, e.question) for e in chunk]
            results = engine.run(queries, progress=True)
            return [_record(engine, run.task, e, r) for e, r in zip(chunk, results)]

        def finish(records: list[dict]) -> list[dict]:
            if run.task == "factscore":
                write_jsonl_atomic(run.output_file, records)
            else:  # ALCE's result format, as the original wrote it
                write_json_atomic(run.output_file, {"data": records, "args": [], "total_cost": 0.0,
                                                    "azure_filter_fail": ""})
            return records

        return run_in_chunks(examples, work, finish, chunk_size=run.chunk_size,
                             journal_path=run.output_file + ".partial", fingerprint=fingerprint)


def asqa_scores(records: list[dict]) -> dict | None:
    """str-em and ROUGE-L means over records that carry ASQA gold (``qa_pairs``/``annotations``)."""
    gold = [r for r in records if r.get("qa_pairs")]
    if not gold:
        return None
    return {
        "str_em": 100 * sum(str_em(r["output"], r["qa_pairs"]) for r in gold) / len(gold),
        "rougeL": 100 * sum(asqa_rouge_l(r["output"], r.get("annotations") or []) for r in gold) / len(gold),
        "count": len(gold),
    }
