"""Benchmark: the batched short-form engine against an original-style per-query loop.

The original (``run_short_form.py``, ``call_model_rerank_w_scores_batch``) handles one query at a
time: a full-length initial generation from the plain prompt (batch 1), then one call with the
query's K evidence prompts (batch K), or a [No Retrieval] generation. This script runs exactly
that loop and the batched engine on the same model, inputs and decision rule, alternately
(``--repeats`` rounds, :mod:`bench_schedules`), checks that both give the same decisions and
predictions, and prints for each the median time with its range, queries per second, page faults
and kernel time, and the median ratio with its range. It also measures the machine's prefill
floor in every round (forward-pass tokens/s over the first evidence prompts at the best of
a few batch sizes, logits at the last position only) and prints each schedule's time as a
multiple of the time its round's floor gives for the tokens it computed (prompts + generated
tokens).

    python scripts/bench_short_form.py --model_name smollm2-135m --n_queries 20 --ndocs 10
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_schedules import alternate, print_report, without_prefix_reuse

from selfrag.evaluation.tasks import load_short_form_examples
from selfrag.inference.scoring import CritiqueWeights, retrieval_probability
from selfrag.inference.short_form import ShortFormConfig, ShortFormEngine, ShortFormQuery
from selfrag.lm.base import GenerationRequest
from selfrag.lm.hf import HFLanguageModel
from selfrag.prompts import format_evidence
from selfrag.tokens import NO_RETRIEVAL


def original_style(engine: ShortFormEngine, lm: HFLanguageModel, queries, ndocs: int):
    """One query at a time, 1 + K generations each, as the original script does."""
    request = GenerationRequest(engine.config.max_new_tokens, control_ids=engine.control_ids)
    engine_batch_size, lm.batch_size = lm.batch_size, ndocs  # a query's K passages: one batch
    try:
        return [_original_query(engine, lm, query, request) for query in queries]
    finally:
        lm.batch_size = engine_batch_size


def _original_query(engine: ShortFormEngine, lm: HFLanguageModel, query,
                    request: GenerationRequest):
    config, probability = engine.config, None
    retrieve = config.mode == "always_retrieve"
    if config.mode == "adaptive_retrieval":
        first = lm.generate([query.prompt], request)[0]  # full-length initial pass
        probability = retrieval_probability(first.control_logprobs[0])
        retrieve = probability > config.threshold
    if retrieve:
        generations = lm.generate([query.prompt + format_evidence(p) for p in query.passages],
                                  request)
        group = list(zip(query.passages, generations))
    else:
        group = [(None, lm.generate([query.prompt + NO_RETRIEVAL], request)[0])]
    return engine.select_answer(group, probability)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name", default="selfrag-smollm2-135m", help="model or offline alias")
    parser.add_argument("--input_file", default="eval_data/popqa_longtail_w_gs.head100.jsonl")
    parser.add_argument("--n_queries", type=int, default=50, help="queries to run")
    parser.add_argument("--ndocs", type=int, default=10, help="passages per query")
    parser.add_argument("--max_new_tokens", type=int, default=15, help="the original's default")
    parser.add_argument("--threshold", type=float, default=0.2, help="adaptive threshold")
    parser.add_argument("--mode", default="adaptive_retrieval", help="retrieval mode")
    parser.add_argument("--batch_size", type=int, default=32, help="batched engine's batch size")
    parser.add_argument("--repeats", type=int, default=3,
                        help="alternating rounds of the two schedules (medians are reported)")
    args = parser.parse_args()

    examples = load_short_form_examples(args.input_file, None, args.ndocs)[: args.n_queries]
    queries = [ShortFormQuery(e.prompt, e.passages) for e in examples]
    lm = HFLanguageModel(args.model_name, device="cpu", batch_size=args.batch_size)
    config = ShortFormConfig(mode=args.mode, threshold=args.threshold,
                             max_new_tokens=args.max_new_tokens,
                             weights=CritiqueWeights(1.0, 1.0, 0.5, use_seqscore=True))
    engine = ShortFormEngine(lm, config)
    lm.generate(["warm up"], GenerationRequest(2))

    evidence = [q.prompt + format_evidence(p) for q in queries for p in q.passages]
    timings = alternate({"batched engine": lambda: engine.run(queries),
                         "original-style loop": without_prefix_reuse(
                             lm, lambda: original_style(engine, lm, queries, args.ndocs))},
                        args.repeats, lm, floor_prompts=evidence)
    batched = timings["batched engine"].result
    looped = timings["original-style loop"].result

    same_decisions = [a.retrieved == b.retrieved for a, b in zip(batched, looped)]
    same_predictions = [a.prediction == b.prediction for a, b in zip(batched, looped)]
    n = len(queries)
    print(f"model {args.model_name}, {n} queries x {args.ndocs} passages, max_new_tokens "
          f"{args.max_new_tokens}, mode {args.mode}, threshold {args.threshold}, "
          f"retrieval frequency {sum(r.retrieved for r in batched) / n:.2f}, "
          f"{args.repeats} alternating rounds (median [min–max])")
    print_report(timings, n, "queries", slow="original-style loop",
                 fast="batched engine", prompts_name="evidence prompts")
    print(f"identical decisions: {sum(same_decisions)}/{n}, identical predictions: "
          f"{sum(same_predictions)}/{n}")
    for i, (a, b) in enumerate(zip(batched, looped)):
        if a.prediction != b.prediction:
            print(f"  query {i}: batched {a.prediction!r} vs loop {b.prediction!r}")
    if not all(same_decisions) or not all(same_predictions):
        sys.exit(1)


if __name__ == "__main__":
    main()
