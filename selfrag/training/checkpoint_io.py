"""Pickle-free training checkpoints: model and optimizer tensors in safetensors, the rest in JSON.

Used for single-process and DDP runs (the state is replicated, the main process writes it).
DeepSpeed runs use DeepSpeed's own sharded checkpoints; FSDP2 runs use
``torch.distributed.checkpoint``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

MODEL_FILE = "model.safetensors"
OPTIMIZER_FILE = "optimizer.safetensors"
OPTIMIZER_META = "optimizer.json"


def save_training_state(folder: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Write model weights, optimizer state and the torch RNG state to ``folder``."""
    from safetensors.torch import save_file, save_model

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    save_model(model, str(out / MODEL_FILE))  # handles tied (shared) tensors
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {"rng.torch": torch.get_rng_state()}
    scalars: dict[str, dict] = {}
    for index, values in state["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(index), {})[name] = value
    save_file(tensors, str(out / OPTIMIZER_FILE))
    meta = {"param_groups": state["param_groups"], "scalars": scalars}
    (out / OPTIMIZER_META).write_text(json.dumps(meta) + "\n")


def load_training_state(folder: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> None:
    """Restore what :func:`save_training_state` wrote (model in place, optimizer, RNG)."""
    from safetensors.torch import load_file, load_model

    src = Path(folder)
    load_model(model, str(src / MODEL_FILE))
    tensors = load_file(str(src / OPTIMIZER_FILE))
    meta = json.loads((src / OPTIMIZER_META).read_text())
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("state."):
            _, index, name = key.split(".", 2)
            state.setdefault(int(index), {})[name] = value
    for index, values in meta["scalars"].items():
        state.setdefault(int(index), {}).update(values)
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    if "rng.torch" in tensors:
        torch.set_rng_state(tensors["rng.torch"])
