"""Generator fine-tuning (the original ``retrieval_lm/finetune.py``): data, model, loop, save."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from selfrag.errors import SelfRagError
from selfrag.io import check_output
from selfrag.offline_models import load_model, load_tokenizer
from selfrag.training.engines import AccelerateEngine
from selfrag.training.loop import TrainConfig, train
from selfrag.training.model_setup import LoraSettings, prepare_tokens, wrap_lora
from selfrag.training.sft_data import (
    EncodeOptions,
    build_sft_dataset,
    load_examples,
    load_hub_examples,
)

logger = logging.getLogger(__name__)


@dataclass
class FinetuneJob:
    """What to train on and with: the non-optimisation part of ``finetune.py``'s flags.

    Attributes:
        faithful: the original's label masking (off-by-one prompt mask; first-to-last paragraph
            span, masking the answers between passages, issue #95) instead of the fixed one.
        mask_paragraphs: mask passage contents; None = the original's rule in faithful mode
            (only with ``use_special_tokens``) and always otherwise.
    """

    model_name_or_path: str | None
    train_file: str | None = None
    dataset_name: str | None = None
    dataset_config_name: str | None = None
    config_name: str | None = None
    tokenizer_name: str | None = None
    use_slow_tokenizer: bool = False
    use_special_tokens: bool = False
    use_lora: bool = False
    lora: LoraSettings = field(default_factory=LoraSettings)
    use_flash_attn: bool = False
    low_cpu_mem_usage: bool = False
    preprocessing_num_workers: int | None = None
    faithful: bool = False
    mask_paragraphs: bool | None = None
    with_tracking: bool = False
    report_to: str = "all"


def finetune(job: FinetuneJob, config: TrainConfig) -> dict:
    """Fine-tune a generator; returns the loop's summary plus the data statistics."""
    if not job.train_file and not job.dataset_name:
        raise SelfRagError("give --train_file or --dataset_name")
    # Inputs and the output folder are checked before any model loads.
    check_output(config.output_dir, "--output_dir", folder=True)
    examples = load_examples(job.train_file) if job.train_file else None
    engine = AccelerateEngine(config.gradient_accumulation_steps,
                              log_with=job.report_to if job.with_tracking else None,
                              project_dir=config.output_dir)
    tokenizer = load_tokenizer(job.tokenizer_name or job.model_name_or_path or job.config_name,
                               job.use_slow_tokenizer)
    model = load_model(job.model_name_or_path, job.config_name,
                       low_cpu_mem_usage=job.low_cpu_mem_usage, use_flash_attn=job.use_flash_attn)
    new_ids = prepare_tokens(tokenizer, model, job.use_special_tokens)
    mask_paragraphs = job.mask_paragraphs
    if mask_paragraphs is None:
        mask_paragraphs = job.use_special_tokens if job.faithful else True
    options = EncodeOptions(max_seq_length=config.max_seq_length, mask_paragraphs=mask_paragraphs,
                            faithful=job.faithful)
    with engine.accelerator.main_process_first():
        if examples is None:
            examples = load_hub_examples(job.dataset_name, job.dataset_config_name)
        dataset, data_stats = build_sft_dataset(tokenizer, examples, options,
                                                num_proc=job.preprocessing_num_workers)
    if job.use_lora:
        model = wrap_lora(model, job.lora, new_ids)
    if job.with_tracking:
        engine.accelerator.init_trackers("selfrag_finetune", {"lr": config.learning_rate,
                                                              "batching": config.batching})
    summary = train(engine, model, tokenizer, dataset, config)
    engine.end()
    summary.update(examples_read=data_stats.read, examples_truncated=data_stats.truncated,
                   examples_dropped=data_stats.dropped_all_masked)
    return summary
