"""Flags and builders shared by the entry points in ``data_creation/generator/``."""

from __future__ import annotations

import argparse
import logging

from selfrag.errors import SelfRagError

logger = logging.getLogger(__name__)
SEED = 0


def add_critic_flags(p: argparse.ArgumentParser, model_required: bool = True) -> None:
    """The critic model and how it is run (our backends, batched)."""
    from selfrag.lm import BACKENDS

    p.add_argument("--model_name", type=str, required=model_required,
                   default=None if model_required else "smollm2-135m",
                   help="critic: HF id or folder (e.g. selfrag/self_rag_critic) or an offline "
                        "alias (smollm2-135m, tiny-random-llama)")
    p.add_argument("--backend", type=str, default="hf", choices=BACKENDS, help="LM backend (ours)")
    p.add_argument("--device", type=str, default="cuda", help="cuda (falls back to cpu) or cpu")
    p.add_argument("--dtype", type=str, default="half", help="half/bfloat16/float32 (CPU: float32)")
    p.add_argument("--download_dir", type=str, default=".cache", help="vLLM download folder")
    p.add_argument("--world_size", type=int, default=1, help="vLLM tensor-parallel size")
    p.add_argument("--tokenizer_path", type=str, default=None, help="tokenizer, if not the model's")
    p.add_argument("--batch_size", type=int, default=10, help="prompts per batch (original: 10)")
    p.add_argument("--max_new_tokens", type=int, default=15, help="tokens per prediction")
    p.add_argument("--critic_instructions", type=str, default=None,
                   help="JSON {inst_mode: text} replacing our critic instructions (e.g. the "
                        "wording the released critic was trained on)")


def build_critic_judge(args, faithful: bool):
    """A :class:`CriticJudge` over the model named by the flags of :func:`add_critic_flags`."""
    from selfrag.cli import build_lm
    from selfrag.data_creation.critic_templates import load_instructions
    from selfrag.data_creation.generator.critic_runs import CriticJudge

    if args.batch_size < 1 or args.max_new_tokens < 1:
        raise SelfRagError("--batch_size and --max_new_tokens must be at least 1")
    instructions = load_instructions(args.critic_instructions)
    lm = build_lm(args, SEED)
    return CriticJudge(lm, args.model_name, instructions, faithful=faithful,
                       max_new_tokens=args.max_new_tokens, batch_size=args.batch_size)


def add_retriever_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--passages", type=str, default=None,
                   help="passage file (DPR TSV or JSONL) of a prebuilt embedding set")
    p.add_argument("--passages_embeddings", type=str, default=None,
                   help="glob of the embedding shards of --passages")
    p.add_argument("--retriever_model", type=str, default=None,
                   help="query encoder (default: the offline MiniLM)")
    p.add_argument("--demo_retriever", action="store_true",
                   help="retrieve from the bundled demo corpus (index built once, offline)")


def build_retriever(args):
    """The retriever named by the flags of :func:`add_retriever_flags`."""
    if bool(args.passages) != bool(args.passages_embeddings):
        raise SelfRagError("--passages/--passages_embeddings: give both")
    if args.demo_retriever:
        from selfrag.retrieval.demo import load_demo_retriever

        return load_demo_retriever()
    if not args.passages:
        raise SelfRagError("no retriever: give --demo_retriever or --passages and "
                           "--passages_embeddings")
    from selfrag.retrieval.encoder import DEFAULT_ENCODER
    from selfrag.retrieval.retriever import Retriever

    retriever = Retriever({})
    retriever.setup_retriever_demo(args.retriever_model or DEFAULT_ENCODER, args.passages,
                                   args.passages_embeddings, save_or_load_index=True)
    return retriever
