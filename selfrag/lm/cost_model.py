"""What a forward pass costs on this machine, measured once per model and device.

A forward pass over ``n`` tokens takes about ``fixed + n / tokens_per_s`` seconds: ``fixed`` is
what any pass pays whatever its size (reading every weight once, kernel launches, the Python
around them), small on a CPU next to its slow arithmetic, large on a GPU. The batch planner
(:mod:`selfrag.lm.batch_planning`) needs their ratio, ``fixed x tokens_per_s``: one more forward
pass is worth merging into another when it would cost more than the padding that merging adds.

:func:`forward_cost` times a few short passes of one row (16 and 272 tokens, the fastest of three
each, after a warm-up), fits the two numbers, and keeps them in
``$SELFRAG_CACHE/forward_costs.json`` under the model's shape and dtype, the device (its name)
and the thread count (the file is read once per process), so later runs on the same machine
reuse them (delete the file to measure
again, e.g. after a measurement taken while the machine was busy; set
``HFLanguageModel.forward_pass_tokens`` to override).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass
from functools import cache

import torch

from selfrag.io import write_json_atomic
from selfrag.offline_models import cache_dir

logger = logging.getLogger(__name__)

COSTS_FILE = "forward_costs.json"
SHORT, LONG = 16, 272  # tokens of the two timed passes
REPEATS = 3


@dataclass(frozen=True)
class ForwardCost:
    """``tokens_per_s``: prefill speed; ``pass_seconds``: a forward pass's fixed cost."""

    tokens_per_s: float
    pass_seconds: float

    @property
    def pass_tokens(self) -> float:
        """The fixed cost in prompt tokens: the ``batch_cost`` of one more forward pass."""
        return self.pass_seconds * self.tokens_per_s


def device_name(device: torch.device | str) -> str:
    """The device as a cache key: a GPU's name, or the CPU's model name and thread count."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{device.type} {_cpu_model()} x{torch.get_num_threads()} threads"


@cache
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            return next((line.split(":", 1)[1].strip() for line in handle
                         if line.startswith("model name")), "unknown")
    except OSError:
        return "unknown"


def cost_key(model) -> str:
    """The model's shape (what its speed depends on: a fine-tuned copy costs what its base costs),
    its dtype and the device."""
    config = model.config
    shape = "-".join(f"{name}{getattr(config, field, None)}" for name, field in (
        ("L", "num_hidden_layers"), ("H", "hidden_size"), ("I", "intermediate_size"),
        ("A", "num_attention_heads"), ("KV", "num_key_value_heads"), ("V", "vocab_size")))
    return f"{config.model_type} {shape}|{model.dtype}|{device_name(model.device)}"


@torch.inference_mode()
def measure(model) -> ForwardCost:
    """Time one-row forward passes of :data:`SHORT` and :data:`LONG` tokens and fit the line."""
    vocab = model.config.vocab_size
    generator = torch.Generator().manual_seed(0)

    def fastest(tokens: int) -> float:
        ids = torch.randint(vocab, (1, tokens), generator=generator).to(model.device)
        seconds = []
        for _ in range(REPEATS):
            if model.device.type == "cuda":
                torch.cuda.synchronize(model.device)
            start = time.perf_counter()
            model(input_ids=ids, use_cache=False, logits_to_keep=1)
            if model.device.type == "cuda":
                torch.cuda.synchronize(model.device)
            seconds.append(time.perf_counter() - start)
        return min(seconds)

    fastest(SHORT)  # warm-up
    short, long = fastest(SHORT), fastest(LONG)
    # a pass whose time hardly grows with its tokens (a tiny model, a GPU) or timing noise: count
    # at least 1% of the long pass as per-token work, so the fixed cost stays finite
    per_token = max(long - short, 0.01 * long) / (LONG - SHORT)
    return ForwardCost(tokens_per_s=1.0 / per_token,
                       pass_seconds=max(short - SHORT * per_token, 0.0))


_READ: dict[tuple[str, str], ForwardCost] = {}  # (costs file, key): read once per process


def forward_cost(model) -> ForwardCost:
    """The cached measurement for ``model`` on its device, measured now if there is none."""
    path = cache_dir() / COSTS_FILE
    key = cost_key(model)
    if (str(path), key) in _READ:
        return _READ[str(path), key]
    _READ[str(path), key] = cost = _read_or_measure(model, path, key)
    return cost


def _read_or_measure(model, path, key: str) -> ForwardCost:
    try:
        known = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        known = {}
    if isinstance(known.get(key), dict):
        try:
            return ForwardCost(**known[key])
        except TypeError:
            pass  # written by another version: measure again
    cost = measure(model)
    logger.info("forward pass on %s: %.0f tokens/s, %.3f s fixed (%.0f tokens)", key,
                cost.tokens_per_s, cost.pass_seconds, cost.pass_tokens)
    try:
        os.makedirs(path.parent, exist_ok=True)
        write_json_atomic(path, {**known, key: asdict(cost)}, indent=1)
    except OSError as err:  # a read-only cache: measure again next time
        logger.warning("could not keep the forward-pass cost in %s: %s", path, err)
    return cost
