"""Distribution back-ends for the one training loop (:mod:`selfrag.training.loop`).

- :class:`AccelerateEngine`: single process, DDP, or DeepSpeed ZeRO through ``accelerate``. This is
  the original's GPU path (``accelerate launch --use_deepspeed --deepspeed_config_file
  stage3_no_offloading_accelerate.conf finetune.py``, as in ``script_finetune_7b.sh``); a DeepSpeed
  config can also be given directly (critic ``--deepspeed``), which also works under plain
  ``torchrun``.
- :class:`FSDP2Engine`: PyTorch FSDP2 (``fully_shard`` on every decoder layer, then the root),
  hand-driven. Used for the critic's ``--fsdp "full_shard auto_wrap"`` on GPUs *and* on CPU
  (gloo): HF Trainer and accelerate silently turn an FSDP request into DDP on CPU, this does not.

Both expose the same small surface the loop needs: ``prepare``, ``accumulate``, ``backward``,
``sync_gradients``, ``clip_grad_norm``, ``save_checkpoint``/``load_checkpoint``, ``save_model``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from pathlib import Path

import torch

from selfrag.io import set_usual_mode

logger = logging.getLogger(__name__)


class AccelerateEngine:
    """``accelerate.Accelerator`` behind the loop's interface.

    Args:
        gradient_accumulation_steps: micro-batches per optimizer step.
        mixed_precision: ``"no"``, ``"bf16"`` or ``"fp16"``; None keeps ``accelerate launch``'s.
        deepspeed_config: path of a DeepSpeed JSON config (else taken from ``accelerate launch``).
        log_with: accelerate tracker names (``--with_tracking --report_to``), or None.
        project_dir: where trackers write.
    """

    def __init__(self, gradient_accumulation_steps: int = 1, mixed_precision: str | None = None,
                 deepspeed_config: str | None = None, log_with=None, project_dir: str | None = None):
        from accelerate import Accelerator
        from accelerate.utils import DeepSpeedPlugin

        kwargs = {}
        if deepspeed_config:
            kwargs["deepspeed_plugin"] = DeepSpeedPlugin(hf_ds_config=deepspeed_config)
        if mixed_precision is not None:
            kwargs["mixed_precision"] = mixed_precision
        deepspeed = deepspeed_config or os.environ.get("ACCELERATE_USE_DEEPSPEED") == "true"
        if not torch.cuda.is_available():
            if deepspeed:
                # accelerate finds no backend for DeepSpeed on CPU and would run each process
                # alone; naming gloo gives DeepSpeed a real process group.
                from accelerate import PartialState

                PartialState(backend="gloo")
            else:
                kwargs["cpu"] = True  # makes accelerate use gloo (DDP) under torchrun on CPU
        self.accelerator = Accelerator(gradient_accumulation_steps=gradient_accumulation_steps,
                                       log_with=log_with, project_dir=project_dir, **kwargs)
        self.uses_deepspeed = self.accelerator.state.deepspeed_plugin is not None
        self.rank = self.accelerator.process_index
        self.world_size = self.accelerator.num_processes
        self.is_main = self.accelerator.is_main_process
        self.device = self.accelerator.device
        self.shards_loader = True  # accelerate splits batches across processes itself

    def prepare(self, model, optimizer, loader, micro_batch_size: int):
        if self.uses_deepspeed:
            ds_config = self.accelerator.state.deepspeed_plugin.deepspeed_config
            # Our loaders use a batch sampler, which accelerate cannot read a batch size from.
            if ds_config.get("train_micro_batch_size_per_gpu", "auto") == "auto":
                ds_config["train_micro_batch_size_per_gpu"] = micro_batch_size
            ds_config["train_batch_size"] = (ds_config["train_micro_batch_size_per_gpu"]
                                             * self.accelerator.gradient_accumulation_steps
                                             * self.world_size)
        model, optimizer, loader = self.accelerator.prepare(model, optimizer, loader)
        if self.uses_deepspeed:
            logger.info("DeepSpeed: %s", zero_report(model, self.rank))
        return model, optimizer, loader

    def accumulate(self, model, end_of_epoch: bool):
        return self.accelerator.accumulate(model)

    def backward(self, loss: torch.Tensor) -> None:
        self.accelerator.backward(loss)

    @property
    def sync_gradients(self) -> bool:
        return self.accelerator.sync_gradients

    def clip_grad_norm(self, model, max_norm: float):
        if self.uses_deepspeed:
            return None  # DeepSpeed clips with the config's gradient_clipping
        return self.accelerator.clip_grad_norm_(model.parameters(), max_norm)

    def reduce_mean(self, value: torch.Tensor) -> torch.Tensor:
        return self.accelerator.reduce(value.detach(), reduction="mean")

    def barrier(self) -> None:
        self.accelerator.wait_for_everyone()

    def save_checkpoint(self, folder: str, model, optimizer) -> None:
        """DeepSpeed: its own sharded checkpoint; otherwise pickle-free safetensors + JSON."""
        if self.uses_deepspeed:
            self.accelerator.save_state(folder, safe_serialization=True)
        elif self.is_main:
            from selfrag.training.checkpoint_io import save_training_state

            save_training_state(folder, self.accelerator.unwrap_model(model), _inner(optimizer))

    def load_checkpoint(self, folder: str, model, optimizer) -> None:
        if self.uses_deepspeed:
            self.accelerator.load_state(folder)
        else:
            from selfrag.training.checkpoint_io import load_training_state

            load_training_state(folder, self.accelerator.unwrap_model(model), _inner(optimizer))

    def save_model(self, model, tokenizer, folder: str) -> None:
        """Gathered (ZeRO-3) weights, HF ``save_pretrained`` format, written by the main process."""
        state = self.accelerator.get_state_dict(model)
        if self.is_main:
            unwrapped = self.accelerator.unwrap_model(model)
            _save_atomically(unwrapped, tokenizer, folder, state)
        self.barrier()

    def end(self) -> None:
        self.accelerator.end_training()


class FSDP2Engine:
    """FSDP2 ``fully_shard``: each decoder layer and the root become DTensor-sharded over ranks.

    Starts the process group itself (gloo on CPU, nccl on GPU; a 1-process group when not run
    under ``torchrun``).

    Args:
        gradient_accumulation_steps: micro-batches per optimizer step.
        bf16: compute in bf16 (``MixedPrecisionPolicy``), keep fp32 master weights and reductions.
        reshard_after_forward: False for ``shard_grad_op`` (ZeRO-2-like), True for ``full_shard``.
        cpu_offload: ``offload`` option: keep sharded parameters on the CPU.
    """

    def __init__(self, gradient_accumulation_steps: int = 1, bf16: bool = False,
                 reshard_after_forward: bool = True, cpu_offload: bool = False):
        import torch.distributed as dist

        if not dist.is_initialized():
            backend = "nccl" if torch.cuda.is_available() else "gloo"
            if "RANK" in os.environ:
                dist.init_process_group(backend)
            else:
                store = Path(tempfile.mkdtemp(prefix="selfrag-pg-")) / "store"
                dist.init_process_group(backend, init_method=f"file://{store}", rank=0, world_size=1)
        self.rank, self.world_size = dist.get_rank(), dist.get_world_size()
        self.is_main = self.rank == 0
        if torch.cuda.is_available():
            local = int(os.environ.get("LOCAL_RANK", "0"))
            torch.cuda.set_device(local)
            self.device = torch.device("cuda", local)
        else:
            self.device = torch.device("cpu")
        self.ga, self.bf16 = gradient_accumulation_steps, bf16
        self.reshard_after_forward, self.cpu_offload = reshard_after_forward, cpu_offload
        self.shards_loader = False  # the loop gives each rank its own share of the batches
        self._micro = 0
        self._sync = True

    def shard(self, model):
        """Apply ``fully_shard`` to every block named in ``model._no_split_modules``, then the root."""
        from torch.distributed.fsdp import CPUOffloadPolicy, MixedPrecisionPolicy, fully_shard

        kwargs = {"reshard_after_forward": self.reshard_after_forward}
        if self.bf16:
            kwargs["mp_policy"] = MixedPrecisionPolicy(param_dtype=torch.bfloat16,
                                                       reduce_dtype=torch.float32)
        if self.cpu_offload:
            kwargs["offload_policy"] = CPUOffloadPolicy()
        model.to(self.device)
        block_names = set(getattr(base_model(model), "_no_split_modules", None) or [])
        blocks = [m for m in model.modules() if type(m).__name__ in block_names]
        if not blocks:
            logger.warning("no decoder block class found to wrap; sharding the root module only")
        for block in blocks:
            fully_shard(block, **kwargs)
        fully_shard(model, **kwargs)
        logger.info("FSDP2: %d blocks sharded over %d ranks; %s", len(blocks), self.world_size,
                    sharding_report(model, self.rank))
        return model

    def prepare(self, model, optimizer, loader, micro_batch_size: int):
        return model, optimizer, loader  # the model was sharded before the optimizer was built

    @contextlib.contextmanager
    def accumulate(self, model, end_of_epoch: bool):
        self._micro += 1
        self._sync = self._micro % self.ga == 0 or end_of_epoch
        model.set_requires_gradient_sync(self._sync)
        yield
        if self._sync:
            self._micro = 0

    def backward(self, loss: torch.Tensor) -> None:
        (loss / self.ga).backward()

    @property
    def sync_gradients(self) -> bool:
        return self._sync

    def clip_grad_norm(self, model, max_norm: float):
        return torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm)

    def reduce_mean(self, value: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        value = value.detach().clone().float()
        dist.all_reduce(value)
        return value / self.world_size

    def barrier(self) -> None:
        import torch.distributed as dist

        dist.barrier()

    def save_checkpoint(self, folder: str, model, optimizer) -> None:
        """Sharded model + optimizer state with ``torch.distributed.checkpoint`` (every rank writes)."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict

        model_state, optim_state = get_state_dict(model, optimizer)
        dcp.save({"model": model_state, "optimizer": optim_state}, checkpoint_id=folder)

    def load_checkpoint(self, folder: str, model, optimizer) -> None:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

        model_state, optim_state = get_state_dict(model, optimizer)
        state = {"model": model_state, "optimizer": optim_state}
        dcp.load(state, checkpoint_id=folder)
        set_state_dict(model, optimizer, model_state_dict=state["model"],
                       optim_state_dict=state["optimizer"])

    def save_model(self, model, tokenizer, folder: str) -> None:
        """Gather the full weights (collective), then rank 0 writes an HF folder."""
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        state = get_model_state_dict(model, options=options)
        if self.is_main:
            _save_atomically(model, tokenizer, folder, state)
        self.barrier()

    def end(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def sharding_report(model, rank: int) -> str:
    """One line telling what this rank really holds (DTensor shards vs full parameters)."""
    from torch.distributed.tensor import DTensor

    local = full = 0
    dtensors = 0
    for param in model.parameters():
        full += param.numel()
        if isinstance(param, DTensor):
            dtensors += 1
            local += param.to_local().numel()
        else:
            local += param.numel()
    weight = model.get_input_embeddings().weight
    local_shape = tuple(weight.to_local().shape) if isinstance(weight, DTensor) else tuple(weight.shape)
    return (f"rank {rank} holds {local}/{full} parameter values ({100 * local / max(full, 1):.1f}%), "
            f"{dtensors} DTensor parameters, input embedding {type(weight).__name__} local shape "
            f"{list(local_shape)} of {list(weight.shape)}")


def zero_report(model, rank: int) -> str:
    """One line telling how much of the parameters this rank holds under ZeRO-3 partitioning."""
    local = full = 0
    for param in model.parameters():
        if hasattr(param, "ds_tensor"):
            full += param.ds_numel
            local += param.ds_tensor.numel()
        else:
            full += param.numel()
            local += param.numel()
    return (f"rank {rank} holds {local}/{full} parameter values ({100 * local / max(full, 1):.1f}%)")


def _inner(optimizer):
    """The torch optimizer inside accelerate's wrapper."""
    return getattr(optimizer, "optimizer", optimizer)


def base_model(model):
    """The transformers model inside a PEFT wrapper (or ``model`` itself)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _save_atomically(model, tokenizer, folder: str, state_dict) -> None:
    """``save_pretrained`` into a temporary sibling folder, then move the files into ``folder``."""
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".final-", dir=target))
    try:
        model.save_pretrained(tmp, state_dict=state_dict)
        tokenizer.save_pretrained(tmp)
        set_usual_mode(tmp)  # save_pretrained writes the weights owner-only (0600)
        for item in tmp.iterdir():
            os.replace(item, target / item.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    logger.info("model saved to %s", target)
