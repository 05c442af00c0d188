r"""Baselines: an LM without retrieval, with retrieved passages in the prompt, or RAG.

Flags and defaults are the original script's, so its README command lines work:

    python retrieval_lm/run_baseline_lm.py --model_name meta-llama/Llama-2-7b-hf \
        --input_file eval_data/popqa_longtail_w_gs.jsonl --max_new_tokens 100 --metric match \
        --result_fp out/llama2_popqa.jsonl --task qa --mode retrieval \
        --prompt_name prompt_no_input_retrieval --top_n 5

CPU-sized example on the offline default model and a bundled file:

    python retrieval_lm/run_baseline_lm.py --model_name smollm2-135m \
        --input_file eval_data/popqa_longtail_w_gs.head100.jsonl --mode retrieval --top_n 3 \
        --max_new_tokens 20 --metric match --result_fp out/baseline_popqa.jsonl

Modes: ``vanilla``, ``retrieval`` (top-n passages in one prompt), ``rag_sequence`` and
``rag_token`` (Lewis et al. 2020, marginalised over the top-n passages; hf backend).
OpenAI models (``gpt-*``, ``text-davinci-*``, or ``--backend openai`` for any name) take the key
from OPENAI_API_KEY (or the original's ``--api_key FILE``) and any server via
``--openai_base_url`` / OPENAI_BASE_URL. ``--faithful`` reproduces the original's sampling
(T=0.8, top_p=0.95) and post-processing quirks (README table).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from selfrag.baselines.backends import BASELINE_BACKENDS, ModelSpec, build_generation
from selfrag.baselines.inputs import check_prompt_name, load_baseline_examples
from selfrag.baselines.postprocess import BASELINE_METRICS
from selfrag.baselines.runner import MODES, BaselineConfig, run_baseline
from selfrag.cli import entry_point, flag_error, resolve_device, run_fingerprint
from selfrag.io import check_output
from selfrag.locks import output_lock

SEED = 0
#: Flags that do not change results, left out of the resume fingerprint.
NOT_FINGERPRINTED = ("result_fp", "device", "api_key", "openai_retries", "openai_backoff",
                     "chunk_size", "int8bit")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model_name", type=str, default="meta-llama/Llama-2-7b-chat-hf",
                   help="HF id/folder, 'smollm2-135m' (offline default), or an OpenAI model name")
    p.add_argument("--input_file", type=str, required=True, help=".json list or JSONL of queries")
    p.add_argument("--retrieval_file", type=str, default=None,
                   help="file whose records' ctxs supply the passages (matched by id, else position)")
    p.add_argument("--mode", type=str, default="vanilla", choices=MODES,
                   help="vanilla, retrieval (top_n passages in the prompt), rag_sequence, rag_token")
    p.add_argument("--device", type=str, default="cuda",
                   help="cuda (falls back to cpu when no GPU is present) or cpu")
    p.add_argument("--max_new_tokens", type=int, default=15, help="tokens per answer")
    p.add_argument("--int8bit", action="store_true", help="unused (the original's flag, kept)")
    p.add_argument("--metric", type=str, default="match", choices=BASELINE_METRICS,
                   help="em, accuracy (first gold is a substring), match (any gold is), f1")
    p.add_argument("--top_n", type=int, default=1, help="passages per query (retrieval/RAG modes)")
    p.add_argument("--result_fp", type=str, required=True,
                   help="output JSONL: the input records with output/golds/metric_result")
    p.add_argument("--task", type=str, default=None,
                   help="fever (= pubhealth) and arc_c get TASK_INST; qa, factscore, ...: bare input")
    p.add_argument("--prompt_name", type=str, default="prompt_no_input",
                   help="template of the original PROMPT_DICT (retrieval: *_retrieval)")
    p.add_argument("--batch_size", type=int, default=5, help="prompts per forward batch")
    p.add_argument("--dtype", type=str, default=None, help="half/bfloat16/float32 (CPU: float32)")
    p.add_argument("--world_size", type=int, default=1, help="vLLM tensor-parallel size")
    p.add_argument("--choices", type=str, nargs="+", default=None,
                   help="closed-set candidates (space-separated) the output is mapped onto")
    p.add_argument("--instruction", type=str, default=None,
                   help="instruction prefix, joined to the input with '\\n\\n### Input:\\n'")
    p.add_argument("--download_dir", type=str, default=".cache", help="vLLM download folder")
    p.add_argument("--api_key", type=str, default=None,
                   help="file holding an OpenAI key (OPENAI_API_KEY is preferred); never logged")
    # Ours.
    p.add_argument("--backend", type=str, default="auto", choices=BASELINE_BACKENDS,
                   help="auto: openai for OpenAI model names, else hf")
    p.add_argument("--tokenizer_path", type=str, default=None, help="tokenizer, if not the model's")
    p.add_argument("--openai_base_url", type=str, default=None,
                   help="OpenAI-compatible server URL (default: OPENAI_BASE_URL or OpenAI's)")
    p.add_argument("--openai_api", type=str, default=None, choices=["chat", "completions"],
                   help="endpoint (default: completions for davinci-style names, else chat)")
    p.add_argument("--openai_retries", type=int, default=6,
                   help="retries on 429/5xx/timeouts before giving up")
    p.add_argument("--openai_backoff", type=float, default=1.0,
                   help="first retry delay in seconds (doubles each retry)")
    p.add_argument("--chunk_size", type=int, default=64, help="queries per resume checkpoint")
    p.add_argument("--faithful", action="store_true",
                   help="the original's sampling (T=0.8, top_p=0.95) and post-processing quirks")
    return p


def check_args(args) -> None:
    if args.max_new_tokens < 1:
        raise flag_error("--max_new_tokens", "must be at least 1")
    if args.openai_retries < 0 or args.openai_backoff < 0:
        raise flag_error("--openai_retries/--openai_backoff", "must not be negative")
    if args.retrieval_file and args.mode == "vanilla":
        raise flag_error("--retrieval_file", "passages are used only with --mode retrieval/rag_*")


@entry_point
def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    check_args(args)
    needs_passages = args.mode != "vanilla"
    config = BaselineConfig(
        mode=args.mode, prompt_name=check_prompt_name(args.prompt_name, needs_passages, args.faithful),
        task=args.task, top_n=args.top_n, metric=args.metric,
        choices=tuple(c for group in args.choices or () for c in group.split()),
        batch_size=args.batch_size, faithful=args.faithful, chunk_size=args.chunk_size)
    # The whole input is validated before any model is loaded.
    examples = load_baseline_examples(args.input_file, args.task, args.instruction, needs_passages,
                                      args.top_n, args.retrieval_file, args.faithful)
    check_output(args.result_fp, "--result_fp")
    import torch

    torch.manual_seed(SEED)
    spec = ModelSpec(args.model_name, args.backend, resolve_device(args.device), args.dtype,
                     args.batch_size, args.world_size, args.download_dir, args.tokenizer_path,
                     args.api_key, args.openai_base_url, args.openai_api, args.openai_retries,
                     args.openai_backoff)
    with output_lock(args.result_fp, "--result_fp"):  # one run per output, before any load
        generator, rag = build_generation(spec, args.mode, args.max_new_tokens, args.faithful,
                                          SEED)
        fingerprint = run_fingerprint(args, NOT_FINGERPRINTED, ("input_file", "retrieval_file"))
        summary = run_baseline(config, examples, args.result_fp, fingerprint, generator, rag)
    if summary["score"] is not None:
        print(f"{summary['metric']}: {summary['score']:.4f} (n={summary['n']})")


if __name__ == "__main__":
    sys.exit(main())
