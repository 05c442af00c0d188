"""Up-front check of the multi-GPU launch scripts (``retrieval_lm/script_finetune_{7b,13b}.sh``).

The scripts start ``accelerate launch`` over several processes; when something they need is
missing, each process fails on its own minutes later and the tracebacks interleave. This check
runs first and names everything missing in one line::

    python -m selfrag.training.launch_check --script script_finetune_7b.sh --num_gpus 4 -- \\
        --model_name_or_path meta-llama/Llama-2-7b-hf --train_file train.jsonl ...

It checks: the GPU count, ``accelerate`` and DeepSpeed installed, flash-attn when
``--use_flash_attn`` is given, the training file present, and the model and tokenizer reachable
(an offline alias, a local folder, the Hugging Face cache, or the Hub, which needs network
access and, for Llama 2, an accepted licence and a login).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
from pathlib import Path

from selfrag.cli import entry_point
from selfrag.errors import SelfRagError


def finetune_inputs(finetune_args: list[str]) -> argparse.Namespace:
    """The flags of ``finetune.py``'s command line that this check needs (the last one wins)."""
    p = argparse.ArgumentParser(add_help=False)
    p.add_argument("--model_name_or_path")
    p.add_argument("--tokenizer_name")
    p.add_argument("--train_file")
    p.add_argument("--use_flash_attn", action="store_true")
    return p.parse_known_args(finetune_args)[0]


def model_problem(name: str) -> str | None:
    """Why ``name`` cannot be loaded here, or None when it can (without downloading weights)."""
    from selfrag.offline_models import OFFLINE_MODELS

    if name in OFFLINE_MODELS or Path(name).is_dir():
        return None
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", "10")  # fail fast without network
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    try:
        hf_hub_download(name, "config.json")  # from the cache when offline; a few bytes otherwise
    except GatedRepoError:
        return f"access to the gated model {name} (accept its licence on the Hub, then log in)"
    except RepositoryNotFoundError:
        return f"the model {name} (no such Hub repository, or a private one: log in)"
    except LocalEntryNotFoundError:
        return f"the model {name} (not in the Hugging Face cache, and the Hub is not reachable)"
    except Exception as err:  # noqa: BLE001 - any other failure also means "cannot load it"
        reason = (str(err).strip().splitlines() or [""])[0][:160]
        return f"the model {name} ({type(err).__name__}: {reason})"
    return None


def launch_problems(num_gpus: int, finetune_args: list[str],
                    gpu_count: int | None = None) -> list[str]:
    """Everything missing to launch ``finetune.py`` with ``finetune_args`` on ``num_gpus`` GPUs.

    Args:
        num_gpus: the processes the script launches, one per GPU.
        finetune_args: the arguments the script passes to ``finetune.py``.
        gpu_count: GPUs present (default: ``torch.cuda.device_count()``).
    """
    if gpu_count is None:
        import torch

        gpu_count = torch.cuda.device_count()
    args = finetune_inputs(finetune_args)
    problems = []
    if gpu_count < num_gpus:
        visible = os.environ.get("CUDA_VISIBLE_DEVICES")
        shown = f", CUDA_VISIBLE_DEVICES={visible}" if visible is not None else ""
        problems.append(f"{num_gpus} GPUs (found {gpu_count}{shown})")
    if shutil.which("accelerate") is None:
        problems.append("the accelerate command (pip install accelerate)")
    if importlib.util.find_spec("deepspeed") is None:
        problems.append("DeepSpeed (pip install -r requirements-gpu.txt)")
    if args.use_flash_attn and importlib.util.find_spec("flash_attn") is None:
        problems.append("flash-attn for --use_flash_attn "
                        "(pip install flash-attn, or drop the flag)")
    if not args.train_file:
        problems.append("--train_file")
    elif not Path(args.train_file).is_file():
        problems.append(f"the training file {Path(args.train_file).resolve()} (train.jsonl of the "
                        "Hub dataset selfrag/selfrag_train_data; or pass --train_file PATH)")
    for name in dict.fromkeys(filter(None, (args.model_name_or_path, args.tokenizer_name))):
        problem = model_problem(name)
        if problem:
            problems.append(problem)
    return problems


@entry_point
def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    own, finetune_args = (argv[:argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv \
        else (argv, [])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--script", default="the launch script", help="name used in the message")
    p.add_argument("--num_gpus", type=int, required=True, help="processes = GPUs launched")
    args = p.parse_args(own)
    problems = launch_problems(args.num_gpus, finetune_args)
    if problems:
        raise SelfRagError(f"{args.script} cannot start, missing: " + "; ".join(problems))


if __name__ == "__main__":
    sys.exit(main())
