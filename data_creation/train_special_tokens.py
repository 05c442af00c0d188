r"""Train the Self-RAG critic (the HF-style command line of the original script of this name).

As in the original README (FSDP over 2 GPUs):
    torchrun --nproc_per_node=2 data_creation/train_special_tokens.py \
        --model_name_or_path meta-llama/Llama-2-7b-hf --data_path critic_train.json \
        --bf16 True --output_dir critic_out --num_train_epochs 3 --per_device_train_batch_size 1 \
        --gradient_accumulation_steps 8 --learning_rate 2e-5 --weight_decay 0 --warmup_ratio 0.01 \
        --lr_scheduler_type cosine --save_steps 300 --save_total_limit 1 --logging_steps 10 \
        --fsdp "full_shard auto_wrap"

The same line runs on CPU (gloo; ``--use_cpu True`` is added when no GPU is present) with
``--model_name_or_path tiny-random-llama``. Data: a JSON list (or JSONL) of
``{instruction, input, output}``.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from transformers import HfArgumentParser, TrainingArguments

from selfrag.cli import entry_point
from selfrag.training.batching import BATCHING_MODES
from selfrag.training.critic import (
    CriticJob,
    modern_training_argv,
    train_config_from_hf,
    train_critic,
)


@dataclass
class ModelArguments:
    model_name_or_path: str = field(default="facebook/opt-125m",
                                    metadata={"help": "base model (HF id, folder or offline alias)"})
    tokenizer_path: str | None = field(default=None, metadata={"help": "tokenizer if not the model's"})
    use_special_token: bool = field(default=False,
                                    metadata={"help": "add the 15 reflection tokens to the vocabulary"})
    not_consider_special_tokens: bool = field(
        default=False, metadata={"help": "exclude the reflection tokens from the loss"})
    use_context_markups: bool = field(
        default=False, metadata={"help": "exclude <paragraph> span contents from the loss"})
    use_flash_attn: bool = field(default=False,
                                 metadata={"help": "flash_attention_2 attention (GPU + flash-attn)"})
    trainable_layers: int | None = field(
        default=None, metadata={"help": "train only the top N decoder layers (and the LM head); "
                                        "no backward pass below them (default: all layers)"})


@dataclass
class DataArguments:
    data_path: str | None = field(default=None, metadata={"help": "JSON list of {instruction, input, output}"})
    separated: bool = field(default=False,
                            metadata={"help": "accepted for compatibility; has no effect (issue #11)"})


@dataclass
class CriticTrainingArguments(TrainingArguments):
    cache_dir: str | None = field(default=None, metadata={"help": "HF cache folder for the model"})
    optim: str = field(default="adamw_torch", metadata={"help": "optimizer (AdamW is used)"})
    model_max_length: int = field(default=512, metadata={"help": "longer examples are truncated"})
    # Removed from TrainingArguments in transformers 5; the original command line passes it.
    warmup_ratio: float = field(default=0.0, metadata={"help": "fraction of steps for LR warmup"})
    batching: str = field(default="padded", metadata={"help": f"one of {BATCHING_MODES}"})
    faithful: bool = field(default=False,
                           metadata={"help": "the original's first-to-last paragraph masking"})
    # Accepted because Alpaca-style command lines pass them; transformers 5 no longer has them.
    fsdp_transformer_layer_cls_to_wrap: str | None = field(
        default=None, metadata={"help": "accepted; FSDP wraps every decoder layer of the model "
                                        "(its _no_split_modules) whatever is named here"})
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "accepted; output_dir is always written (and resumed "
                                         "with --resume_from_checkpoint)"})
    logging_dir: str | None = field(
        default=None, metadata={"help": "accepted; losses go to output_dir/train_log.jsonl"})


def _with_cpu_flag(argv: list[str]) -> list[str]:
    """Without a GPU, transformers refuses ``--bf16 True`` unless ``--use_cpu`` is set."""
    import torch

    if torch.cuda.is_available() or any(a.startswith("--use_cpu") for a in argv):
        return argv
    return [*argv, "--use_cpu", "True"]


@entry_point
def main(argv: list[str] | None = None) -> None:
    argv = _with_cpu_flag(modern_training_argv(list(sys.argv[1:] if argv is None else argv)))
    parser = HfArgumentParser((ModelArguments, DataArguments, CriticTrainingArguments))
    model_args, data_args, training_args = parser.parse_args_into_dataclasses(argv)
    if data_args.data_path is None:
        parser.error("--data_path is required")
    if training_args.batching not in BATCHING_MODES:
        parser.error(f"--batching must be one of {BATCHING_MODES}")
    fsdp_config = training_args.fsdp_config or {}
    job = CriticJob(
        model_name_or_path=model_args.model_name_or_path, data_path=data_args.data_path,
        tokenizer_path=model_args.tokenizer_path, use_special_token=model_args.use_special_token,
        not_consider_special_tokens=model_args.not_consider_special_tokens,
        use_context_markups=model_args.use_context_markups,
        use_flash_attn=model_args.use_flash_attn, trainable_layers=model_args.trainable_layers,
        faithful=training_args.faithful,
        bf16=training_args.bf16, fsdp=bool(training_args.fsdp),
        reshard_after_forward=bool(fsdp_config.get("reshard_after_forward", True)),
        cpu_offload=bool(fsdp_config.get("cpu_offload", False)),
        deepspeed=training_args.deepspeed if isinstance(training_args.deepspeed, str) else None,
    )
    config = train_config_from_hf(training_args, training_args.warmup_ratio,
                                  training_args.model_max_length, training_args.batching)
    summary = train_critic(job, config)
    if summary.get("world_size", 1) == 1 or training_args.process_index == 0:
        logging.getLogger("train_special_tokens").info("done: %s", json.dumps(summary))


if __name__ == "__main__":
    sys.exit(main())
