r"""Benchmark: batched long-form search against the original's schedule, in --faithful mode.

The original expands one beam node at a time (its K passages in one call) and one query at a
time. This script runs the same faithful tree search both ways on the same model and inputs,
alternately (``--repeats`` rounds, :mod:`bench_schedules`), checks that the outputs are
identical, and prints for each the median wall time with its range, segments generated per
second, page faults and kernel time, its time as a multiple of the machine's prefill floor
measured at the start of each round, and the median ratio with its range.

    python scripts/bench_long_form.py --model_name smollm2-135m --n_queries 10 --ndocs 3 \
        --max_new_tokens 30 --max_depth 3 --beam_width 2

The offline default model is not Self-RAG-trained and never asks for a passage mid-answer, so on
its own only the first level of the search runs. ``--retrieve_every N`` adds a logits processor
that makes it emit ``[Retrieval]`` once N tokens have followed the last ``</paragraph>`` (the
same for both schedules), so that the deeper levels of the search, where a trained model spends
its time, are measured too.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import torch
from transformers import LogitsProcessor

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_schedules import alternate, print_report, without_prefix_reuse

from selfrag.evaluation.long_form_tasks import load_long_form_examples
from selfrag.inference.long_form_faithful import OriginalTreeSearch
from selfrag.inference.long_form_types import LongFormConfig, LongFormQuery
from selfrag.inference.scoring import CritiqueWeights
from selfrag.lm.base import GenerationRequest
from selfrag.lm.hf import HFLanguageModel
from selfrag.prompts import format_evidence
from selfrag.tokens import PARAGRAPH_CLOSE, RETRIEVAL, reflection_token_ids


class RetrieveEvery(LogitsProcessor):
    """Forces ``[Retrieval]`` once ``every`` tokens follow the last ``</paragraph>``."""

    def __init__(self, retrieval_id: int, close_id: int, every: int):
        self.retrieval_id, self.close_id, self.every = retrieval_id, close_id, every

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        last_close = torch.where(input_ids == self.close_id, positions, -1).max(dim=1).values
        due = (input_ids.shape[1] - 1 - last_close) >= self.every
        due &= last_close >= 0  # the first decision (no passage yet) stays the model's own
        scores[due, self.retrieval_id] = scores[due].max(dim=-1).values + 10.0
        return scores


class CountingLM:
    """Counts the continuations (segments) generated through it."""

    def __init__(self, lm):
        self.lm, self.tokenizer, self.count = lm, lm.tokenizer, 0

    def generate(self, prompts, request, desc=None):
        self.count += len(prompts)
        return self.lm.generate(prompts, request, desc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name", default="selfrag-smollm2-135m")
    parser.add_argument("--input_file", default="eval_data/factscore_bio.head20.jsonl")
    parser.add_argument("--task", default="factscore")
    parser.add_argument("--n_queries", type=int, default=10)
    parser.add_argument("--ndocs", type=int, default=3)
    parser.add_argument("--max_new_tokens", type=int, default=30)
    parser.add_argument("--max_depth", type=int, default=3)
    parser.add_argument("--beam_width", type=int, default=2)
    parser.add_argument("--threshold", type=float, default=0.2)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3,
                        help="alternating rounds of the two schedules (medians are reported)")
    parser.add_argument("--retrieve_every", type=int, default=0,
                        help="make the model emit [Retrieval] N tokens after each passage (0: off)")
    args = parser.parse_args()

    examples = load_long_form_examples(args.input_file, args.task, args.ndocs)[: args.n_queries]
    queries = [LongFormQuery(e.prompt, e.passages, e.question) for e in examples]
    hf = HFLanguageModel(args.model_name, device="cpu", batch_size=args.batch_size)
    ids = reflection_token_ids(hf.tokenizer)
    if args.retrieve_every:
        hf.logits_processors.append(
            RetrieveEvery(ids.id(RETRIEVAL), ids.id(PARAGRAPH_CLOSE), args.retrieve_every))
    lm = CountingLM(hf)
    config = LongFormConfig(mode="always_retrieve", threshold=args.threshold,
                            max_new_tokens=args.max_new_tokens, beam_width=args.beam_width,
                            max_depth=args.max_depth, ndocs=args.ndocs, faithful=True,
                            weights=CritiqueWeights(use_seqscore=True))
    lm.generate(["warm up"], GenerationRequest(2))

    def counted(search):
        lm.count = 0
        return search(), lm.count

    batched_search = OriginalTreeSearch(lm, config, ids)
    per_node = OriginalTreeSearch(lm, config, ids, one_node_per_call=True)
    evidence = [q.prompt + format_evidence(p) for q in queries for p in q.passages]
    timings = alternate(
        {"batched search": lambda: counted(lambda: batched_search.run(queries)),
         "original schedule": without_prefix_reuse(hf, lambda: counted(
             lambda: [r for q in queries for r in per_node.run([q])]))},
        args.repeats, hf, floor_prompts=evidence)
    (batched, batched_segments) = timings["batched search"].result
    (looped, looped_segments) = timings["original schedule"].result

    # Texts must match exactly. Scores may differ in the last bits: fp32 sums come out slightly
    # differently in other batch shapes, and a path's score is a product over its segments
    # (measured here: up to ~2e-5 relative), so they are compared to 1e-4.
    same = [[s.text for s in a.segments] == [s.text for s in b.segments]
            and (a.score == b.score  # both None when the query did not retrieve
                 or None not in (a.score, b.score)
                 and math.isclose(a.score, b.score, rel_tol=1e-4, abs_tol=1e-7))
            for a, b in zip(batched, looped)]
    score_gap = max((abs(a.score - b.score) / max(abs(b.score), 1e-12)
                     for a, b in zip(batched, looped) if a.score is not None and b.score is not None),
                    default=0.0)
    depth = max(len(r.segments) for r in batched)
    print(f"model {args.model_name}, {len(queries)} {args.task} queries, ndocs {args.ndocs}, "
          f"max_new_tokens {args.max_new_tokens}, max_depth {args.max_depth}, beam {args.beam_width}, "
          f"retrieve_every {args.retrieve_every or 'off'}")
    print_report(timings, batched_segments, "segments", slow="original schedule",
                 fast="batched search", prompts_name="first-level evidence prompts")
    print(f"identical outputs  : {sum(same)}/{len(same)} (deepest path: {depth} segments; "
          f"largest relative score difference {score_gap:.1e})")
    if not all(same):
        sys.exit(1)


if __name__ == "__main__":
    main()
