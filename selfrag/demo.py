"""The main job in one command: Self-RAG answers a few questions and shows its reflection.

    python -m selfrag.demo                       # offline default model, CPU, demo retriever
    python -m selfrag.demo --model_name selfrag/selfrag_llama2_7b --device cuda

For every question it prints the retrieval decision ``p([Retrieval])`` and, for each passage it
read, the continuation with its reflection tokens and the critique scores, then the answer.
The offline default, ``selfrag-smollm2-135m``, is SmolLM2-135M-Instruct fine-tuned into a small
Self-RAG by ``scripts/reproduce_small.sh`` (model card: ``selfrag/checkpoints/selfrag-smollm2-135m``):
its reflection tokens are learned, but at 135M parameters its answers are mostly what it copies
from a passage. ``--model_name smollm2-135m`` shows the untrained base for comparison.
"""

from __future__ import annotations

import argparse
import json
import textwrap
import time
import warnings
from pathlib import Path

from selfrag.inference.scoring import CritiqueWeights
from selfrag.inference.short_form import (
    ShortFormConfig,
    ShortFormEngine,
    ShortFormQuery,
    ShortFormResult,
)
from selfrag.offline_models import BASE_MODEL, DEFAULT_MODEL, SELFRAG_ADAPTER
from selfrag.prompts import format_prompt

POPQA_FILE = Path(__file__).resolve().parents[1] / "eval_data" / "popqa_longtail_w_gs.head100.jsonl"

# Example queries of the original README's quick start; the passages are our own words.
SEED_QUERIES = [
    ("Leave odd one out: twitter, instagram, whatsapp.", []),
    ("Can you tell me the difference between llamas and alpacas?", [{
        "title": "Alpaca",
        "text": "The alpaca is a domesticated South American camelid. It looks much like a llama "
                "but is clearly smaller, and where llamas were bred to carry loads, alpacas were "
                "bred for their soft fleece.",
    }]),
    ("What is overfitting in machine learning?", [{
        "title": "Overfitting",
        "text": "In statistics and machine learning, overfitting is when a model fits its training "
                "data so closely, noise included, that it predicts new data poorly.",
    }]),
]


def popqa_queries(count: int, ndocs: int) -> list[tuple[str, list[dict], list[str]]]:
    rows = [json.loads(line) for line in POPQA_FILE.open(encoding="utf-8")][:count]
    return [(r["question"], r["ctxs"][:ndocs], r["answers"]) for r in rows]


def show(question: str, result: ShortFormResult, threshold: float,
         golds: list[str] | None = None) -> None:
    print("=" * 100)
    print(f"Q: {question}")
    if result.retrieval_probability is not None:
        wants = result.retrieval_probability > threshold
        verdict = ("retrieve" if result.retrieved else
                   "would retrieve, but no passages are at hand" if wants else "no retrieval")
        print(f"   p([Retrieval]) / (p([Retrieval]) + p([No Retrieval])) at the first token: "
              f"{result.retrieval_probability:.3f} -> {verdict}")
    if not result.retrieved:
        print(f"   [No Retrieval] continuation: {result.no_retrieval!r}")
    for number, candidate in enumerate(result.candidates):
        s = candidate.scores
        print(f"   passage {number} ({candidate.ctx.get('title', '')}):")
        print(textwrap.indent(textwrap.fill(repr(candidate.pred), 94), "      "))
        print(f"      IsRel {s['relevance']:.3f}  IsSup {s['support']:.3f}  IsUse {s['utility']:+.3f}"
              f"  exp(mean logprob) {2.718281828 ** s['mean_logprob']:.3f}  -> score {s['final']:.3f}")
    print(f"A: {result.prediction.strip()!r}" + (f"   (gold: {golds[:3]})" if golds else ""))


def default_threshold(model_name: str) -> float:
    """The shipped model's validated δ_PopQA (its ``results.json``), else the original's 0.2."""
    results = SELFRAG_ADAPTER / "results.json"
    if model_name == DEFAULT_MODEL and results.is_file():
        threshold = json.loads(results.read_text(encoding="utf-8"))["thresholds"]["popqa"]
        print(f"Adaptive retrieval threshold δ={threshold}: the one its reproduction chose on "
              "validation.")
        return float(threshold)
    return 0.2


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model_name", default=DEFAULT_MODEL, help="model id, folder or offline alias")
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda if available)")
    parser.add_argument("--n_popqa", type=int, default=5,
                        help="bundled PopQA questions asked after the 3 example queries (default 5; "
                             "up to 100)")
    parser.add_argument("--ndocs", type=int, default=3, help="passages per PopQA question")
    parser.add_argument("--max_new_tokens", type=int, default=40, help="tokens per continuation")
    parser.add_argument("--threshold", type=float, default=None,
                        help="adaptive retrieval threshold (default: for the offline default "
                             "model, the δ its reproduction chose on validation; else 0.2, the "
                             "original's)")
    parser.add_argument("--no_retriever", action="store_true",
                        help="do not search the bundled demo corpus for questions without passages")
    args = parser.parse_args(argv)
    start = time.monotonic()
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # per-shard load bars would bury the answers
    hf_logging.set_verbosity_error()
    warnings.filterwarnings("ignore", category=FutureWarning)  # deprecations inside peft/HF

    def elapsed() -> str:
        return f"[{time.monotonic() - start:5.1f} s]"

    from selfrag.lm.hf import HFLanguageModel

    if args.model_name == DEFAULT_MODEL:
        print(f"Offline default model: {DEFAULT_MODEL}, SmolLM2-135M-Instruct trained into a small")
        print("Self-RAG on CPU by scripts/reproduce_small.sh. A 135M model: its retrieval decisions and")
        print("critique tokens are learned, its knowledge is tiny. What it was trained on and how it")
        print(f"scores: {SELFRAG_ADAPTER / 'README.md'}\n")
    elif args.model_name == BASE_MODEL:
        print("Base model: SmolLM2-135M-Instruct with the 15 reflection tokens added, NOT Self-RAG-")
        print("trained: its reflection tokens are untrained, the decisions and scores below show the")
        print("machinery only.\n")
    if args.threshold is None:
        args.threshold = default_threshold(args.model_name)
    print(f"{elapsed()} loading {args.model_name}" + (
        " (the first run builds it from the base model and the shipped adapter)"
        if args.model_name == DEFAULT_MODEL else ""), flush=True)
    lm = HFLanguageModel(args.model_name, device=args.device, batch_size=16)
    config = ShortFormConfig(threshold=args.threshold, max_new_tokens=args.max_new_tokens,
                             weights=CritiqueWeights(1.0, 1.0, 0.5, use_seqscore=True))
    retriever = None
    if not args.no_retriever:
        from selfrag.retrieval.demo_index import load_demo_retriever

        print(f"{elapsed()} loading the demo retriever: questions without passages search the "
              "bundled corpus (eval_data/corpus)", flush=True)
        retriever = load_demo_retriever()
    engine = ShortFormEngine(lm, config, retriever=retriever, n_docs=args.ndocs)
    items = [(q, p, None) for q, p in SEED_QUERIES] + popqa_queries(args.n_popqa, args.ndocs)
    print(f"{elapsed()} ready; {len(items)} questions, each answered as soon as it is done\n",
          flush=True)
    for question, passages, golds in items:  # one at a time, so the first answer shows early
        asked = time.monotonic()
        (result,) = engine.run([ShortFormQuery(format_prompt(question), passages, question)])
        show(question, result, args.threshold, golds)
        print(f"   {elapsed()} answered in {time.monotonic() - asked:.1f} s", flush=True)
    print(f"\n{elapsed()} done: {len(items)} questions (more with --n_popqa N)")


if __name__ == "__main__":
    main()
