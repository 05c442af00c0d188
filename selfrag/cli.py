"""Helpers shared by the entry points: error reporting and logging."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Callable

from selfrag.errors import SelfRagError


def run_main(main: Callable[[list[str] | None], object], argv: list[str] | None = None) -> int:
    """Call ``main``; a :class:`SelfRagError` becomes one ``error:`` line and exit status 2.

    Returns ``main``'s own status when it returns an int, else 0.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        status = main(argv)
    except SelfRagError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return status if isinstance(status, int) else 0


def entry_point(main: Callable[[list[str] | None], object]) -> Callable[[list[str] | None], int]:
    """Make ``main(argv)`` a command: ``main(argv)`` then returns its exit status (see run_main)."""

    @functools.wraps(main)
    def command(argv: list[str] | None = None) -> int:
        return run_main(main, argv)

    return command


def flag_error(flag: str, message: str) -> SelfRagError:
    return SelfRagError(f"{flag}: {message}")


# -- flags shared by run_short_form.py and run_long_form_static.py (the originals' flags) ----------
def add_model_flags(p, *, required: bool = True, default: str | None = None,
                    model_help: str = "HF id or folder of a Self-RAG model, or an offline alias: "
                                      "selfrag-smollm2-135m (trained here), smollm2-135m (untrained base)",
                    batch_size: int = 16,
                    batch_help: str = "prompts per forward batch (ours, hf)") -> None:
    """The model and how it is run; :func:`build_lm` reads them."""
    from selfrag.lm import BACKENDS

    p.add_argument("--model_name", type=str, required=required, default=default, help=model_help)
    p.add_argument("--device", type=str, default="cuda",
                   help="cuda (falls back to cpu when no GPU is present) or cpu")
    p.add_argument("--tokenizer_path", type=str, default=None, help="tokenizer, if not the model's")
    p.add_argument("--download_dir", type=str, default=".cache", help="vLLM download folder")
    p.add_argument("--world_size", type=int, default=1, help="vLLM tensor-parallel size")
    p.add_argument("--dtype", type=str, default="half", help="half/bfloat16/float32 (CPU: float32)")
    p.add_argument("--backend", type=str, default="hf", choices=BACKENDS, help="LM backend (ours)")
    p.add_argument("--batch_size", type=int, default=batch_size, help=batch_help)


def add_inference_flags(p, max_depth: int = 2) -> None:
    p.add_argument("--max_new_tokens", type=int, default=15, help="tokens per continuation")
    p.add_argument("--ndocs", type=int, default=10, help="passages per query")
    p.add_argument("--threshold", type=float, default=None,
                   help="adaptive retrieval: retrieve iff p(Ret)/(p(Ret)+p(NoRet)) > threshold")
    p.add_argument("--use_seqscore", action="store_true", help="add exp(mean token log-prob)")
    p.add_argument("--use_groundness", "--use_grounding", dest="use_groundness",
                   action="store_true", help="add the IsSup score (both spellings accepted)")
    p.add_argument("--use_utility", action="store_true", help="add the IsUse score")
    p.add_argument("--beam_width", type=int, default=2, help="segment beam width (long form)")
    p.add_argument("--max_depth", type=int, default=max_depth, help="segments per answer (long form)")
    p.add_argument("--w_rel", type=float, default=1.0, help="weight of IsRel")
    p.add_argument("--w_sup", type=float, default=1.0, help="weight of IsSup")
    p.add_argument("--w_use", type=float, default=1.0, help="weight of IsUse (paper: 0.5)")
    p.add_argument("--mode", type=str, default="adaptive_retrieval",
                   choices=["adaptive_retrieval", "no_retrieval", "always_retrieve", "default"],
                   help="'default' is the original's default string and means adaptive_retrieval")
    p.add_argument("--chunk_size", type=int, default=64,
                   help="queries per engine call and per resume checkpoint (ours)")
    p.add_argument("--faithful", action="store_true",
                   help="reproduce the original's decisions and quirks (see README)")
    # Online retrieval (ours): searched passages replace the records' own.
    add_retriever_flags(p)


def add_retriever_flags(p) -> None:
    """Where online retrieval searches; :func:`build_retriever` reads them."""
    p.add_argument("--passages", type=str, default=None,
                   help="online retrieval: passage file (DPR TSV or JSONL) of the index")
    p.add_argument("--passages_embeddings", type=str, default=None,
                   help="online retrieval: glob of the embedding shards of --passages")
    p.add_argument("--retriever_model", type=str, default=None,
                   help="online retrieval: query encoder (default: the offline MiniLM)")
    p.add_argument("--demo_retriever", action="store_true",
                   help="online retrieval from the bundled demo corpus (built once, offline)")
    p.add_argument("--index_factory", type=str, default="Flat",
                   help="online retrieval: faiss index of the embeddings, as in "
                        "passage_retrieval.py (e.g. 'IVF4096,PQ64x4fs,DiskRefine(int8)': "
                        "Wikipedia on a laptop)")
    p.add_argument("--search_params", type=str, default="",
                   help="online retrieval: its search parameters, e.g. 'nprobe=32,shortlist=256'")


def check_retriever_flags(args) -> None:
    if bool(args.passages) != bool(args.passages_embeddings):
        raise flag_error("--passages/--passages_embeddings", "give both for online retrieval")


def check_inference_flags(args) -> None:
    for flag in ("ndocs", "max_new_tokens", "batch_size", "chunk_size", "beam_width", "max_depth"):
        if getattr(args, flag) < 1:
            raise flag_error(f"--{flag}", "must be at least 1")
    if args.threshold is not None and not 0.0 <= args.threshold <= 1.0 and not args.faithful:
        raise flag_error("--threshold", "is a probability ratio in [0, 1]")
    check_retriever_flags(args)


def critique_weights(args):
    from selfrag.inference.scoring import CritiqueWeights

    return CritiqueWeights(args.w_rel, args.w_sup, args.w_use, use_support=args.use_groundness,
                           use_utility=args.use_utility, use_seqscore=args.use_seqscore)


def mode_of(args) -> str:
    return "adaptive_retrieval" if args.mode == "default" else args.mode


def _shared_search_settings(args) -> dict:
    """The settings short and long form take from the same flags (:func:`add_inference_flags`)."""
    return {"mode": mode_of(args), "threshold": args.threshold,
            "max_new_tokens": args.max_new_tokens, "weights": critique_weights(args),
            "faithful": args.faithful}


def short_form_config(args):
    """The :class:`~selfrag.inference.short_form.ShortFormConfig` of run_short_form.py's flags."""
    from selfrag.inference.short_form import ShortFormConfig

    return ShortFormConfig(task=args.task, **_shared_search_settings(args))


def long_form_config(args):
    """The :class:`~selfrag.inference.long_form_types.LongFormConfig` of
    run_long_form_static.py's flags; its ``ndocs`` is the run's one number of passages per query."""
    from selfrag.inference.long_form_types import LongFormConfig

    return LongFormConfig(beam_width=args.beam_width, max_depth=args.max_depth, ndocs=args.ndocs,
                          ignore_cont=args.ignore_cont, **_shared_search_settings(args))


def run_inference(args, seed: int, run, load_examples, run_fn):
    """The inference entry points' steps once their ``run`` is built: validate the whole input
    (``load_examples(run, online)``) and claim ``--output_file`` before the model loads, then
    load the model and the retriever and return ``run_fn(run, lm, examples, fingerprint,
    retriever=...)``."""
    from selfrag.io import check_output
    from selfrag.locks import output_lock

    examples = load_examples(run, uses_online_retrieval(args))
    check_output(args.output_file, "--output_file")
    with output_lock(args.output_file, "--output_file"):  # one run per output, before any load
        lm = build_lm(args, seed)
        return run_fn(run, lm, examples, run_fingerprint(args), retriever=build_retriever(args))


def uses_online_retrieval(args) -> bool:
    return bool(args.passages or args.demo_retriever)


def resolve_device(requested: str) -> str:
    """``--device``: the original's default ``cuda`` falls back to the CPU when there is no GPU."""
    import torch

    return requested if requested != "cuda" or torch.cuda.is_available() else "cpu"


def build_lm(args, seed: int):
    """The backend named by the model flags (see :func:`add_model_flags`)."""
    import torch

    from selfrag.lm import load_lm

    torch.manual_seed(seed)
    return load_lm(args.backend, args.model_name, device=resolve_device(args.device), dtype=args.dtype,
                   batch_size=args.batch_size, world_size=args.world_size,
                   download_dir=args.download_dir, tokenizer_path=args.tokenizer_path)


def build_retriever(args, n_docs: int = 5):
    """A Retriever from the online-retrieval flags (``n_docs``: its default number of passages),
    or None when none is asked for."""
    if args.demo_retriever:
        from selfrag.retrieval.demo_index import load_demo_retriever

        return load_demo_retriever()
    if not args.passages:
        return None
    from selfrag.retrieval.encoder import DEFAULT_ENCODER
    from selfrag.retrieval.retriever import Retriever

    retriever = Retriever({"index_factory": args.index_factory,
                           "search_params": args.search_params})
    retriever.setup_retriever_demo(args.retriever_model or DEFAULT_ENCODER, args.passages,
                                   args.passages_embeddings, n_docs=n_docs,
                                   save_or_load_index=True)
    return retriever


#: Flags that never change a run's results (where it writes, where it runs, how fast).
NOT_FINGERPRINTED = ("output_file", "device")


def run_fingerprint(args, exclude: tuple[str, ...] = NOT_FINGERPRINTED,
                    input_flags: tuple[str, ...] = ("input_file",),
                    model_flag: str = "model_name") -> dict:
    """What a resumed run must share with the one that wrote the journal: its flags (less
    ``exclude``), the content of the files named by ``input_flags`` and the model's identity
    (:mod:`selfrag.resume`)."""
    from selfrag.resume import input_identity, model_identity

    fingerprint = {k: v for k, v in vars(args).items() if k not in exclude}
    fingerprint["inputs"] = {flag: input_identity(getattr(args, flag, None))
                             for flag in input_flags}
    fingerprint["model"] = model_identity(getattr(args, model_flag, None))
    return fingerprint
