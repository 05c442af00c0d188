"""Self-RAG short-form inference (PopQA, TriviaQA, PubHealth, ARC-Challenge).

Flags and defaults are the original script's (spec §4.1), so its README command lines work:

    python retrieval_lm/run_short_form.py --model_name selfrag/selfrag_llama2_7b \
        --input_file eval_data/popqa_longtail_w_gs.jsonl --mode adaptive_retrieval \
        --max_new_tokens 100 --threshold 0.2 --output_file out.json --metric match \
        --ndocs 10 --use_groundness --use_utility --use_seqscore --dtype half

CPU-sized example on the offline default model and a bundled file:

    python retrieval_lm/run_short_form.py --model_name smollm2-135m \
        --input_file eval_data/popqa_longtail_w_gs.head100.jsonl --ndocs 5 \
        --max_new_tokens 20 --threshold 0.2 --output_file out/popqa.json --metric match

``--faithful`` reproduces the original's retrieval decisions and raw answers (README table).
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from selfrag.cli import flag_error, run_main  # noqa: E402
from selfrag.evaluation.tasks import SHORT_FORM_TASKS  # noqa: E402
from selfrag.inference.scoring import CritiqueWeights  # noqa: E402
from selfrag.inference.short_form import ShortFormConfig  # noqa: E402
from selfrag.inference.short_form_run import ShortFormRun, load_run_examples, run_short_form  # noqa: E402
from selfrag.lm import BACKENDS  # noqa: E402

SEED = 633  # the original's global seed


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_name", type=str, required=True,
                   help="HF id or folder of a Self-RAG model, or 'smollm2-135m' (offline default)")
    p.add_argument("--input_file", type=str, required=True, help=".json list or JSONL of queries")
    p.add_argument("--output_file", type=str, required=True, help="result JSON (written atomically)")
    p.add_argument("--task", type=str, default=None, choices=SHORT_FORM_TASKS,
                   help="fever/pubhealth and arc_c are closed-set; others (or none) are open QA")
    p.add_argument("--device", type=str, default="cuda",
                   help="cuda (falls back to cpu when no GPU is present) or cpu")
    p.add_argument("--max_new_tokens", type=int, default=15, help="tokens per continuation")
    p.add_argument("--tokenizer_path", type=str, default=None, help="tokenizer, if not the model's")
    p.add_argument("--download_dir", type=str, default=".cache", help="vLLM download folder")
    p.add_argument("--ndocs", type=int, default=10, help="passages per query taken from ctxs")
    p.add_argument("--world_size", type=int, default=1, help="vLLM tensor-parallel size")
    p.add_argument("--dtype", type=str, default="half", help="half/bfloat16/float32 (CPU: float32)")
    p.add_argument("--threshold", type=float, default=None,
                   help="adaptive retrieval: retrieve iff p(Ret)/(p(Ret)+p(NoRet)) > threshold")
    p.add_argument("--use_seqscore", action="store_true", help="add exp(mean token log-prob)")
    p.add_argument("--use_groundness", "--use_grounding", dest="use_groundness",
                   action="store_true", help="add the IsSup score")
    p.add_argument("--use_utility", action="store_true", help="add the IsUse score")
    p.add_argument("--beam_width", type=int, default=2, help="unused in short form (compatibility)")
    p.add_argument("--max_depth", type=int, default=2, help="unused in short form (compatibility)")
    p.add_argument("--w_rel", type=float, default=1.0, help="weight of IsRel")
    p.add_argument("--w_sup", type=float, default=1.0, help="weight of IsSup")
    p.add_argument("--w_use", type=float, default=1.0, help="weight of IsUse (paper: 0.5)")
    p.add_argument("--mode", type=str, default="adaptive_retrieval",
                   choices=["adaptive_retrieval", "no_retrieval", "always_retrieve", "default"],
                   help="'default' is the original's default string and means adaptive_retrieval")
    p.add_argument("--metric", type=str, default="match", choices=["match", "accuracy", "em", "f1"],
                   help="per-query metric against the gold answers")
    # Ours.
    p.add_argument("--backend", type=str, default="hf", choices=BACKENDS, help="LM backend")
    p.add_argument("--batch_size", type=int, default=16, help="prompts per forward batch (hf)")
    p.add_argument("--chunk_size", type=int, default=64,
                   help="queries per engine call and per resume checkpoint")
    p.add_argument("--faithful", action="store_true",
                   help="reproduce the original's decisions and raw answers (see README)")
    # Online retrieval (ours): the records' ctxs are ignored and passages are searched only for
    # queries that decide to retrieve.
    p.add_argument("--passages", type=str, default=None,
                   help="online retrieval: passage file (DPR TSV or JSONL) of the index")
    p.add_argument("--passages_embeddings", type=str, default=None,
                   help="online retrieval: glob of the embedding shards of --passages")
    p.add_argument("--retriever_model", type=str, default=None,
                   help="online retrieval: query encoder (default: the offline MiniLM)")
    p.add_argument("--demo_retriever", action="store_true",
                   help="online retrieval from the bundled demo corpus (built once, offline)")
    return p


def build_retriever(args):
    """A Retriever from the online-retrieval flags, or None when none is asked for."""
    if args.demo_retriever:
        from selfrag.retrieval.demo import load_demo_retriever

        return load_demo_retriever()
    if not args.passages:
        return None
    from selfrag.retrieval.encoder import DEFAULT_ENCODER
    from selfrag.retrieval.retriever import Retriever

    retriever = Retriever({})
    retriever.setup_retriever_demo(args.retriever_model or DEFAULT_ENCODER, args.passages,
                                   args.passages_embeddings, n_docs=args.ndocs,
                                   save_or_load_index=True)
    return retriever


def check_args(args) -> None:
    if args.ndocs < 1:
        raise flag_error("--ndocs", "must be at least 1")
    if args.max_new_tokens < 1:
        raise flag_error("--max_new_tokens", "must be at least 1")
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0 and not args.faithful:
        raise flag_error("--threshold", "is a probability ratio in [0, 1]")
    if args.batch_size < 1 or args.chunk_size < 1:
        raise flag_error("--batch_size/--chunk_size", "must be at least 1")
    if bool(args.passages) != bool(args.passages_embeddings):
        raise flag_error("--passages/--passages_embeddings", "give both for online retrieval")


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    check_args(args)
    random.seed(SEED)
    config = ShortFormConfig(
        mode="adaptive_retrieval" if args.mode == "default" else args.mode,
        threshold=args.threshold, max_new_tokens=args.max_new_tokens, task=args.task,
        faithful=args.faithful,
        weights=CritiqueWeights(args.w_rel, args.w_sup, args.w_use, use_support=args.use_groundness,
                                use_utility=args.use_utility, use_seqscore=args.use_seqscore),
    )
    run = ShortFormRun(args.input_file, args.output_file, config, ndocs=args.ndocs,
                       metric=args.metric, chunk_size=args.chunk_size)
    online = bool(args.passages or args.demo_retriever)
    examples = load_run_examples(run, online)  # validates the whole file before the model loads

    import torch

    from selfrag.lm import load_lm

    torch.manual_seed(SEED)
    device = args.device if args.device != "cuda" or torch.cuda.is_available() else "cpu"
    lm = load_lm(args.backend, args.model_name, device=device, dtype=args.dtype,
                 batch_size=args.batch_size, world_size=args.world_size,
                 download_dir=args.download_dir, tokenizer_path=args.tokenizer_path)
    fingerprint = {k: v for k, v in vars(args).items() if k not in ("output_file", "device")}
    output = run_short_form(run, lm, examples, fingerprint, retriever=build_retriever(args))
    if output["metric_mean"] is not None:
        print(f"{args.metric}: {output['metric_mean']:.4f}")
    print(f"Retrieval Frequencies: {output['retrieval_frequency']:.4f}")


if __name__ == "__main__":
    sys.exit(run_main(main))
