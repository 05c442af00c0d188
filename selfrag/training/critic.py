"""Critic training (the original ``data_creation/train_special_tokens.py``) on the shared loop.

The original ran HF ``Trainer`` with ``--fsdp "full_shard auto_wrap"``. Here the same command line
selects :class:`~selfrag.training.engines.FSDP2Engine` (real parameter sharding on GPUs and on
CPU), ``--deepspeed`` selects DeepSpeed through accelerate, and anything else plain accelerate.
What broke the original as shipped (issue #11: an import of the flash-attn patch relative to
``..retrieval_lm`` and two prompt keys that do not exist) has no counterpart here: the prompt
comes from :func:`selfrag.prompts.format_critic_prompt` and flash attention is a transformers
attention implementation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from selfrag.errors import SelfRagError
from selfrag.io import check_output
from selfrag.offline_models import load_model, load_tokenizer
from selfrag.training.engines import AccelerateEngine, FSDP2Engine
from selfrag.training.loop import TrainConfig, train
from selfrag.training.model_setup import prepare_tokens, train_top_layers
from selfrag.training.sft_data import EncodeOptions, build_sft_dataset, load_examples

logger = logging.getLogger(__name__)


@dataclass
class CriticJob:
    """Model and data choices of the critic trainer (its ModelArguments/DataArguments).

    Attributes:
        use_special_token: add the 15 reflection tokens (the released critic was trained without
            them and predicts the strings as text, issue #35).
        not_consider_special_tokens: keep the reflection tokens out of the loss.
        use_context_markups: mask the content of ``<paragraph>`` spans in the target.
        trainable_layers: train only the top N decoder layers (:func:`train_top_layers`; not in
            the original, which trained every weight); None: all.
        fsdp: shard with FSDP2; ``reshard_after_forward`` False is ``shard_grad_op``.
        deepspeed: DeepSpeed JSON config (through accelerate).
    """

    model_name_or_path: str
    data_path: str
    tokenizer_path: str | None = None
    use_special_token: bool = False
    not_consider_special_tokens: bool = False
    use_context_markups: bool = False
    use_flash_attn: bool = False
    trainable_layers: int | None = None
    faithful: bool = False
    bf16: bool = False
    fsdp: bool = False
    reshard_after_forward: bool = True
    cpu_offload: bool = False
    deepspeed: str | None = None


def make_engine(job: CriticJob, gradient_accumulation_steps: int):
    """FSDP2 for ``--fsdp``, DeepSpeed for ``--deepspeed``, plain accelerate otherwise."""
    if job.fsdp and job.deepspeed:
        raise SelfRagError("--fsdp and --deepspeed are exclusive")
    if job.fsdp:
        return FSDP2Engine(gradient_accumulation_steps, bf16=job.bf16,
                           reshard_after_forward=job.reshard_after_forward,
                           cpu_offload=job.cpu_offload)
    return AccelerateEngine(gradient_accumulation_steps, mixed_precision="bf16" if job.bf16 else "no",
                            deepspeed_config=job.deepspeed)


def train_critic(job: CriticJob, config: TrainConfig) -> dict:
    """Train the critic; the output folder loads with ``from_pretrained`` (tokenizer included)."""
    check_output(config.output_dir, "--output_dir", folder=True)  # before any model loads
    examples = load_examples(job.data_path)
    engine = make_engine(job, config.gradient_accumulation_steps)
    tokenizer = load_tokenizer(job.tokenizer_path or job.model_name_or_path)
    model = load_model(job.model_name_or_path, use_flash_attn=job.use_flash_attn)
    prepare_tokens(tokenizer, model, job.use_special_token)
    train_top_layers(model, job.trainable_layers)
    options = EncodeOptions(max_seq_length=config.max_seq_length, critic=True,
                            mask_paragraphs=job.use_context_markups,
                            mask_reflection_tokens=job.not_consider_special_tokens,
                            faithful=job.faithful)
    dataset, data_stats = build_sft_dataset(tokenizer, examples, options)
    summary = train(engine, model, tokenizer, dataset, config)
    summary.update(engine=type(engine).__name__, world_size=engine.world_size,
                   examples_read=data_stats.read, examples_truncated=data_stats.truncated,
                   examples_dropped=data_stats.dropped_all_masked)
    engine.end()
    return summary


#: TrainingArguments names that transformers 5 removed or renamed, as the original's command lines
#: (and the Stanford Alpaca train.py they come from) spell them -> today's name.
RENAMED_TRAINING_ARGS = {
    "--evaluation_strategy": "--eval_strategy",
    "--no_cuda": "--use_cpu",
    "--per_gpu_train_batch_size": "--per_device_train_batch_size",
    "--per_gpu_eval_batch_size": "--per_device_eval_batch_size",
}


def modern_training_argv(argv: list[str]) -> list[str]:
    """``argv`` with the old TrainingArguments spellings (:data:`RENAMED_TRAINING_ARGS`) renamed,
    in both ``--name value`` and ``--name=value`` forms."""
    out = []
    for arg in argv:
        name, eq, value = arg.partition("=")
        out.append(RENAMED_TRAINING_ARGS.get(name, name) + eq + value)
    return out


def train_config_from_hf(args, warmup_ratio: float, max_seq_length: int, batching: str) -> TrainConfig:
    """Map HF ``TrainingArguments`` (as parsed from the original command line) onto TrainConfig."""
    save = str(getattr(args.save_strategy, "value", args.save_strategy))
    scheduler = str(getattr(args.lr_scheduler_type, "value", args.lr_scheduler_type))
    warmup_steps = args.warmup_steps if isinstance(args.warmup_steps, int) else 0
    if isinstance(args.warmup_steps, float) and 0 < args.warmup_steps < 1:
        warmup_ratio = warmup_ratio or args.warmup_steps  # transformers 5: a float < 1 is a ratio
    return TrainConfig(
        output_dir=args.output_dir, per_device_train_batch_size=args.per_device_train_batch_size,
        max_seq_length=max_seq_length, learning_rate=args.learning_rate,
        weight_decay=args.weight_decay, num_train_epochs=args.num_train_epochs,
        max_train_steps=args.max_steps if args.max_steps > 0 else None,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        lr_scheduler_type=scheduler, warmup_ratio=warmup_ratio, warmup_steps=int(warmup_steps),
        max_grad_norm=args.max_grad_norm or None,
        logging_steps=int(args.logging_steps) if args.logging_steps >= 1 else None,
        checkpointing_steps=int(args.save_steps) if save == "steps" else None,
        checkpoint_each_epoch=save == "epoch", checkpoint_prefix="checkpoint-",
        keep_last=args.save_total_limit, resume_from_checkpoint=args.resume_from_checkpoint,
        batching=batching, seed=args.seed,
    )
