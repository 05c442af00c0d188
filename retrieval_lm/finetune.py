r"""Fine-tune a Self-RAG generator (flags and defaults of the original ``finetune.py``).

GPU (as the original scripts, see script_finetune_7b.sh):
    accelerate launch --mixed_precision bf16 --num_machines 1 --num_processes 4 --use_deepspeed \
        --deepspeed_config_file stage3_no_offloading_accelerate.conf finetune.py \
        --model_name_or_path meta-llama/Llama-2-7b-hf --use_special_tokens --train_file train.jsonl ...

CPU smoke run (tiny random Llama, seconds):
    python retrieval_lm/finetune.py --model_name_or_path tiny-random-llama --use_special_tokens \
        --train_file /work/shared/data/train/selfrag_train_sample50.jsonl --max_seq_length 256 \
        --per_device_train_batch_size 4 --max_train_steps 5 --output_dir /tmp/selfrag_tiny
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from selfrag.cli import entry_point, flag_error
from selfrag.training.batching import BATCHING_MODES
from selfrag.training.generator import FinetuneJob, finetune
from selfrag.training.loop import TrainConfig
from selfrag.training.model_setup import LoraSettings

SCHEDULERS = ["linear", "cosine", "cosine_with_restarts", "polynomial", "constant",
              "constant_with_warmup"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dataset_name", default=None, help="datasets hub name of the training data")
    p.add_argument("--dataset_config_name", default=None, help="config of --dataset_name")
    p.add_argument("--train_file", default=None, help="JSON/JSONL file of {instruction, input, output}")
    p.add_argument("--model_name_or_path", default=None,
                   help="base model: HF id, folder, or offline alias (tiny-random-llama, smollm2-135m)")
    p.add_argument("--config_name", default=None, help="model config if not the model's own")
    p.add_argument("--use_lora", action="store_true", help="train LoRA adapters (+ new token rows)")
    p.add_argument("--lora_rank", type=int, default=64, help="LoRA rank")
    p.add_argument("--lora_alpha", type=float, default=16, help="LoRA alpha")
    p.add_argument("--lora_dropout", type=float, default=0.1, help="LoRA dropout")
    p.add_argument("--use_flash_attn", action="store_true",
                   help="flash_attention_2 attention (needs flash-attn and a GPU)")
    p.add_argument("--tokenizer_name", default=None, help="tokenizer if not the model's own")
    p.add_argument("--use_slow_tokenizer", action="store_true", help="slow (Python) tokenizer")
    p.add_argument("--max_seq_length", type=int, default=512,
                   help="longer examples are truncated (and counted)")
    p.add_argument("--per_device_train_batch_size", type=int, default=8, help="micro-batch size")
    p.add_argument("--learning_rate", type=float, default=5e-5, help="peak learning rate")
    p.add_argument("--weight_decay", type=float, default=0.0, help="AdamW weight decay")
    p.add_argument("--num_train_epochs", type=int, default=3, help="training epochs")
    p.add_argument("--max_train_steps", type=int, default=None,
                   help="optimizer steps; overrides --num_train_epochs")
    p.add_argument("--gradient_accumulation_steps", type=int, default=1,
                   help="micro-batches per optimizer step")
    p.add_argument("--lr_scheduler_type", default="linear", choices=SCHEDULERS, help="LR schedule")
    p.add_argument("--warmup_ratio", type=float, default=0, help="fraction of steps for warmup")
    p.add_argument("--output_dir", default=None, help="where the model and checkpoints go")
    p.add_argument("--seed", type=int, default=None, help="random seed (default 42)")
    p.add_argument("--preprocessing_num_workers", type=int, default=None,
                   help="processes for tokenization")
    p.add_argument("--overwrite_cache", action="store_true",
                   help="accepted for compatibility (tokenization is never cached on disk)")
    p.add_argument("--checkpointing_steps", default=None,
                   help="save a resumable state every N steps, or 'epoch'")
    p.add_argument("--logging_steps", type=int, default=None, help="log the loss every N steps")
    p.add_argument("--resume_from_checkpoint", default=None,
                   help="checkpoint folder to resume from, or 'latest' (newest in --output_dir)")
    p.add_argument("--with_tracking", action="store_true", help="log to experiment trackers")
    p.add_argument("--report_to", default="all",
                   help="trackers for --with_tracking (tensorboard, wandb, ... or all)")
    p.add_argument("--low_cpu_mem_usage", action="store_true", help="load weights lazily")
    p.add_argument("--use_special_tokens", action="store_true",
                   help="add the 15 reflection tokens (+ <pad>) to tokenizer and model")
    p.add_argument("--faithful", action="store_true",
                   help="the original's label masking (off-by-one prompt mask, first-to-last "
                        "paragraph span) instead of the fixed per-span masking")
    p.add_argument("--batching", default="padded", choices=BATCHING_MODES,
                   help="padded (original), length_grouped (same batches, less padding) or "
                        "packed (rows of batch_size x max_seq_length tokens)")
    p.add_argument("--clip_grad_norm", type=float, default=-1,
                   help="max gradient norm (<= 0: off; DeepSpeed uses its config)")
    args = p.parse_args(argv)
    if args.train_file is None and args.dataset_name is None:
        p.error("need either --train_file or --dataset_name")
    if args.output_dir is None:
        p.error("--output_dir is required")
    return args


@entry_point
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    steps = args.checkpointing_steps
    if steps is not None and steps != "epoch" and not steps.isdigit():
        raise flag_error("--checkpointing_steps", f"must be an integer or 'epoch', got {steps!r}")
    job = FinetuneJob(
        model_name_or_path=args.model_name_or_path, train_file=args.train_file,
        dataset_name=args.dataset_name, dataset_config_name=args.dataset_config_name,
        config_name=args.config_name, tokenizer_name=args.tokenizer_name,
        use_slow_tokenizer=args.use_slow_tokenizer, use_special_tokens=args.use_special_tokens,
        use_lora=args.use_lora, lora=LoraSettings(args.lora_rank, args.lora_alpha, args.lora_dropout),
        use_flash_attn=args.use_flash_attn, low_cpu_mem_usage=args.low_cpu_mem_usage,
        preprocessing_num_workers=args.preprocessing_num_workers, faithful=args.faithful,
        with_tracking=args.with_tracking, report_to=args.report_to,
    )
    config = TrainConfig(
        output_dir=args.output_dir, per_device_train_batch_size=args.per_device_train_batch_size,
        max_seq_length=args.max_seq_length, learning_rate=args.learning_rate,
        weight_decay=args.weight_decay, num_train_epochs=args.num_train_epochs,
        max_train_steps=args.max_train_steps,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        lr_scheduler_type=args.lr_scheduler_type, warmup_ratio=args.warmup_ratio,
        max_grad_norm=args.clip_grad_norm if args.clip_grad_norm > 0 else None,
        logging_steps=args.logging_steps,
        checkpointing_steps=int(steps) if steps and steps.isdigit() else None,
        checkpoint_each_epoch=steps == "epoch", checkpoint_prefix="step_",
        resume_from_checkpoint=args.resume_from_checkpoint, batching=args.batching,
        seed=42 if args.seed is None else args.seed,
    )
    summary = finetune(job, config)
    logging.getLogger("finetune").info("done: %s", json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
