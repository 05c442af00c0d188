"""The one training loop, shared by the generator (``finetune.py``) and the critic trainer.

Distribution lives in the engine (:mod:`selfrag.training.engines`): accelerate (single process,
DDP, DeepSpeed ZeRO) or FSDP2. Everything else is here: optimizer with weight-decay groups,
scheduler, gradient accumulation, logging, step/epoch checkpoints with rotation and resume, and
the final save.
"""

from __future__ import annotations

import inspect
import json
import logging
import math
import os
import shutil
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from selfrag.errors import SelfRagError
from selfrag.io import set_usual_mode
from selfrag.training.batching import make_loader
from selfrag.training.engines import base_model
from selfrag.training.packed_attention import per_example_attention
from selfrag.training.sft_data import IGNORE_INDEX

logger = logging.getLogger(__name__)

STATE_FILE = "selfrag_train_state.json"
LOG_FILE = "train_log.jsonl"
_NO_DECAY = ("bias", "norm")  # name parts exempt from weight decay (biases, norms)


@dataclass
class TrainConfig:
    """Optimisation and bookkeeping settings (plain values; entry points map flags onto them).

    Attributes:
        output_dir: final model and checkpoints.
        checkpointing_steps: save every N optimizer steps (None: never; see ``checkpoint_each_epoch``).
        checkpoint_prefix: checkpoint folder prefix (``step_`` for finetune, ``checkpoint-`` critic).
        keep_last: keep only the newest N step checkpoints (``--save_total_limit``).
        resume_from_checkpoint: a checkpoint folder, or ``"latest"`` for the newest in output_dir.
        batching: ``padded``, ``length_grouped`` or ``packed`` (see :mod:`batching`).
        warmup_steps: warmup steps; when > 0 it wins over ``warmup_ratio``.
        max_grad_norm: gradient clipping (None: off; DeepSpeed uses its config's value).
        supervised_logits_only: apply the LM head only where a supervised token is predicted
            (:func:`supervised_loss`; same loss and gradients); False computes it at every
            position, as ``model(**batch).loss`` does (for comparison, or a model whose forward
            lacks ``logits_to_keep``, which is detected anyway).
        per_example_attention: with packed batches and ``sdpa``, attend one example at a time
            (:mod:`~selfrag.training.packed_attention`; same loss and gradients); False keeps
            transformers' block-diagonal mask over the whole row (for comparison).
    """

    output_dir: str
    per_device_train_batch_size: int = 8
    max_seq_length: int = 512
    learning_rate: float = 5e-5
    weight_decay: float = 0.0
    num_train_epochs: float = 3
    max_train_steps: int | None = None
    gradient_accumulation_steps: int = 1
    lr_scheduler_type: str = "linear"
    warmup_ratio: float = 0.0
    warmup_steps: int = 0
    max_grad_norm: float | None = None
    logging_steps: int | None = None
    checkpointing_steps: int | None = None
    checkpoint_each_epoch: bool = False
    checkpoint_prefix: str = "step_"
    keep_last: int | None = None
    resume_from_checkpoint: str | None = None
    batching: str = "padded"
    seed: int = 42
    supervised_logits_only: bool = True
    per_example_attention: bool = True


def _optimizer(model, config: TrainConfig) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if any(part in name.lower() for part in _NO_DECAY) else decay).append(param)
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=config.learning_rate)


def _checkpoints(output_dir: Path, prefix: str) -> list[Path]:
    found = [p for p in output_dir.glob(f"{prefix}*") if (p / STATE_FILE).is_file()]
    return sorted(found, key=lambda p: json.loads((p / STATE_FILE).read_text())["global_step"])


def supervised_loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The mean next-token cross-entropy over the supervised tokens of ``batch`` (what
    ``model(**batch).loss`` is), with the LM head applied only at the positions that predict a
    supervised token (transformers' ``logits_to_keep``).

    A critic example supervises its label and EOS, 2 of ~200 tokens, yet the head's product with
    the whole vocabulary (49k columns for SmolLM2) was computed at every position: on critic data
    a step of SmolLM2-135M on CPU is ~1.3x faster without that (``scripts/bench_training.py
    --heads all,supervised``). Positions are shared by a batch's rows (the union of theirs); a
    row's unsupervised kept positions are ignored by the loss.
    """
    targets = batch["labels"][:, 1:]
    keep = (targets != IGNORE_INDEX).any(dim=0).nonzero().squeeze(-1)
    if keep.numel() == 0:  # nothing supervised: the model's own loss (NaN, as before)
        return model(**batch, use_cache=False).loss
    inputs = {k: v for k, v in batch.items() if k != "labels"}
    logits = model(**inputs, use_cache=False, logits_to_keep=keep).logits
    return torch.nn.functional.cross_entropy(logits.flatten(0, 1).float(),
                                             targets[:, keep].flatten(),
                                             ignore_index=IGNORE_INDEX)


def _accepts_logits_to_keep(model) -> bool:
    return "logits_to_keep" in inspect.signature(base_model(model).forward).parameters


def train(engine, model, tokenizer, dataset, config: TrainConfig) -> dict:
    """Train ``model`` on an encoded dataset and save it (HF folder or LoRA adapter) to output_dir.

    Returns:
        Summary: ``global_step``, ``final_loss``, ``target_tokens``, ``tokens``, ``seconds``.
    """
    out = Path(config.output_dir)
    torch.manual_seed(config.seed)
    if hasattr(engine, "shard"):
        model = engine.shard(model)
    rank, world = (0, 1) if engine.shards_loader else (engine.rank, engine.world_size)
    loader = make_loader(dataset, config.batching, config.per_device_train_batch_size,
                         config.max_seq_length, tokenizer.pad_token_id, config.seed, rank, world)
    sampler = loader.batch_sampler
    raw_optimizer = _optimizer(model, config)
    if config.supervised_logits_only and _accepts_logits_to_keep(model):
        loss_of = supervised_loss
    else:
        def loss_of(model, batch):
            return model(**batch, use_cache=False).loss
    model.train()
    attention = per_example_attention(model,
                                      config.batching if config.per_example_attention else "")
    model, optimizer, loader = engine.prepare(model, raw_optimizer, loader,
                                               config.per_device_train_batch_size)

    micro_per_epoch = len(loader)
    updates_per_epoch = math.ceil(micro_per_epoch / config.gradient_accumulation_steps)
    max_steps = config.max_train_steps or math.ceil(config.num_train_epochs * updates_per_epoch)
    epochs = math.ceil(max_steps / updates_per_epoch)
    from transformers import get_scheduler

    # Warmup = int(total steps x warmup_ratio), stepped once per optimizer step (as the original).
    warmup = config.warmup_steps or int(max_steps * config.warmup_ratio)
    scheduler = get_scheduler(config.lr_scheduler_type, raw_optimizer, num_warmup_steps=warmup,
                              num_training_steps=max_steps)
    global_step, start_epoch, skip = 0, 0, 0
    if config.resume_from_checkpoint:
        global_step, start_epoch, skip = _resume(engine, model, optimizer, config, out)
        with warnings.catch_warnings():  # fast-forwarding the schedule, no optimizer step
            warnings.simplefilter("ignore", UserWarning)
            for _ in range(global_step):
                scheduler.step()
    if engine.is_main:
        out.mkdir(parents=True, exist_ok=True)
        logger.info("training: %d examples, %d micro-batches/epoch/rank, %d ranks, %d steps "
                    "(%d epochs), batching=%s", len(dataset), micro_per_epoch, engine.world_size,
                    max_steps, epochs, config.batching)
    progress = tqdm(total=max_steps, initial=global_step, disable=not engine.is_main, desc="train")
    stats = {"tokens": 0, "target_tokens": 0}
    window, last_loss, started = [], float("nan"), time.perf_counter()
    with attention:  # entered here, created on the model before engine.prepare wrapped it
        for epoch in range(start_epoch, epochs):
            sampler.set_epoch(epoch)
            for i, batch in enumerate(loader):
                if epoch == start_epoch and i < skip:
                    continue
                batch = {k: v.to(engine.device) for k, v in batch.items()}
                with engine.accumulate(model, end_of_epoch=i == micro_per_epoch - 1):
                    loss = loss_of(model, batch)
                    engine.backward(loss)
                    if engine.sync_gradients:
                        if config.max_grad_norm:
                            engine.clip_grad_norm(model, config.max_grad_norm)
                        optimizer.step()
                        optimizer.zero_grad()
                window.append(loss.detach().float())
                stats["target_tokens"] += int((batch["labels"] != IGNORE_INDEX).sum())
                stats["tokens"] += int(batch["attention_mask"].sum() if "attention_mask" in batch
                                       else batch["input_ids"].numel())
                if not engine.sync_gradients:
                    continue
                scheduler.step()
                global_step += 1
                progress.update(1)
                if (config.logging_steps and global_step % config.logging_steps == 0
                        or global_step == max_steps):
                    last_loss = float(engine.reduce_mean(torch.stack(window).mean()))
                    _log(engine, out, {"step": global_step, "epoch": epoch, "loss": last_loss,
                                       "lr": scheduler.get_last_lr()[0],
                                       "seconds": round(time.perf_counter() - started, 3)})
                    progress.set_postfix(loss=f"{last_loss:.4f}")
                window.clear()
                if config.checkpointing_steps and global_step % config.checkpointing_steps == 0:
                    _checkpoint(engine, model, optimizer, config, out, global_step, epoch, i + 1,
                                f"{config.checkpoint_prefix}{global_step}")
                if global_step >= max_steps:
                    break
            skip = 0
            if config.checkpoint_each_epoch:
                _checkpoint(engine, model, optimizer, config, out, global_step, epoch + 1, 0,
                            f"epoch_{epoch}")
            if global_step >= max_steps:
                break
    progress.close()
    engine.save_model(model, tokenizer, str(out))
    stats.update(global_step=global_step, final_loss=last_loss,
                 seconds=time.perf_counter() - started)
    return stats


def _log(engine, out: Path, record: dict) -> None:
    """One JSON line per logging step in ``train_log.jsonl`` (+ accelerate trackers if any)."""
    if hasattr(engine, "accelerator") and engine.accelerator.trackers:
        engine.accelerator.log({"train_loss": record["loss"], "learning_rate": record["lr"]},
                               step=record["step"])
    if engine.is_main:
        logger.info("step %d: loss %.4f lr %.3g", record["step"], record["loss"], record["lr"])
        with (out / LOG_FILE).open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")


def _checkpoint(engine, model, optimizer, config: TrainConfig, out: Path, global_step: int,
                epoch: int, batches_done: int, name: str) -> None:
    """Save a resumable checkpoint into ``out/name`` (written under a temporary name, renamed)."""
    tmp, final = out / f".tmp-{name}", out / name
    if engine.is_main and tmp.exists():
        shutil.rmtree(tmp)
    engine.barrier()
    engine.save_checkpoint(str(tmp), model, optimizer)
    engine.barrier()
    if engine.is_main:
        state = {"global_step": global_step, "epoch": epoch, "batches_done": batches_done,
                 "world_size": engine.world_size, "config": asdict(config)}
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=1) + "\n")
        set_usual_mode(tmp)  # safetensors/DeepSpeed may write owner-only files
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        if config.keep_last and name.startswith(config.checkpoint_prefix):
            for old in _checkpoints(out, config.checkpoint_prefix)[: -config.keep_last]:
                shutil.rmtree(old, ignore_errors=True)
        logger.info("checkpoint saved: %s", final)
    engine.barrier()


def _resume(engine, model, optimizer, config: TrainConfig, out: Path) -> tuple[int, int, int]:
    folder = Path(config.resume_from_checkpoint)
    if config.resume_from_checkpoint == "latest":
        found = _checkpoints(out, config.checkpoint_prefix) + _checkpoints(out, "epoch_")
        if not found:
            raise SelfRagError(f"--resume_from_checkpoint latest: no checkpoint in {out}")
        folder = max(found, key=lambda p: json.loads((p / STATE_FILE).read_text())["global_step"])
    if not (folder / STATE_FILE).is_file():
        raise SelfRagError(f"{folder} is not a checkpoint of this trainer (no {STATE_FILE})")
    state = json.loads((folder / STATE_FILE).read_text())
    if state["world_size"] != engine.world_size:
        logger.warning("resuming a %d-process checkpoint on %d processes: the data order differs",
                       state["world_size"], engine.world_size)
    engine.load_checkpoint(str(folder), model, optimizer)
    logger.info("resumed from %s at step %d", folder, state["global_step"])
    return state["global_step"], state["epoch"], state["batches_done"]
