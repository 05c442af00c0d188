"""Flags and builders shared by the entry points in ``data_creation/generator/``."""

from __future__ import annotations

import argparse
import logging

from selfrag.cli import add_model_flags, check_retriever_flags
from selfrag.cli import build_retriever as cli_build_retriever
from selfrag.errors import SelfRagError

logger = logging.getLogger(__name__)
SEED = 0


def add_critic_flags(p: argparse.ArgumentParser, model_required: bool = True) -> None:
    """The critic model and how it is run (our backends, batched)."""
    add_model_flags(p, required=model_required,
                    default=None if model_required else "smollm2-135m",
                    model_help="critic: HF id or folder (e.g. selfrag/self_rag_critic) or an "
                               "offline alias (smollm2-135m, tiny-random-llama)",
                    batch_size=10, batch_help="prompts per batch (original: 10)")
    p.add_argument("--max_new_tokens", type=int, default=15, help="tokens per prediction")
    p.add_argument("--critic_instructions", type=str, default=None,
                   help="JSON {inst_mode: text} replacing our critic instructions (e.g. the "
                        "wording the released critic was trained on)")


def build_critic_judge(args, faithful: bool):
    """A :class:`CriticJudge` over the model named by the flags of :func:`add_critic_flags`."""
    from selfrag.cli import build_lm
    from selfrag.data_creation.critic.templates import load_instructions
    from selfrag.data_creation.generator.critic_runs import CriticJudge
    from selfrag.resume import model_identity

    if args.batch_size < 1 or args.max_new_tokens < 1:
        raise SelfRagError("--batch_size and --max_new_tokens must be at least 1")
    instructions = load_instructions(args.critic_instructions)
    lm = build_lm(args, SEED)
    return CriticJudge(lm, args.model_name, instructions, faithful=faithful,
                       max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                       identity=model_identity(args.model_name))


def build_retriever(args):
    """The retriever named by the flags of :func:`selfrag.cli.add_retriever_flags`; one is needed."""
    check_retriever_flags(args)
    retriever = cli_build_retriever(args)
    if retriever is None:
        raise SelfRagError("no retriever: give --demo_retriever or --passages and "
                           "--passages_embeddings")
    return retriever
