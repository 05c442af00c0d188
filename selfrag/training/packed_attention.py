"""Attention over packed rows one example at a time (training with ``--batching packed``).

A packed row concatenates several examples with ``position_ids`` restarting at each one
(:func:`selfrag.training.batching.pack_collate`). With ``sdpa`` transformers turns that into a
block-diagonal causal mask over the whole row, and scaled-dot-product attention then computes
every (query, key) pair of the row, masked or not, through its masked (slower) kernel: a critic
row of 1,536 tokens holds ~7 examples, so ~6/7 of that work is thrown away. ``sdpa_packed``
computes the same attention as one causal call per example, with no mask. On CPU a training
step of SmolLM2-135M on critic rows takes ~0.6x the time (``scripts/bench_training.py
--attention``); the loss and gradients are those of the masked computation (tested).

Flash attention needs none of this: transformers already runs it per example of a packed row.
"""

from __future__ import annotations

import contextlib

import torch

from selfrag.training.engines import base_model

NAME = "sdpa_packed"


def packed_sdpa(module, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                attention_mask: torch.Tensor | None, position_ids: torch.Tensor | None = None,
                **kwargs) -> tuple[torch.Tensor, None]:
    """transformers' ``sdpa`` attention, run causally on each example of a packed row.

    ``query``/``key``/``value`` are ``(batch, heads, tokens, head_dim)``; the output is
    ``(batch, tokens, heads, head_dim)`` like every attention function of transformers. An
    example starts wherever ``position_ids`` does not continue the previous token's by one
    (transformers' own rule for packed rows). With an attention mask, no ``position_ids`` or a
    cache (query shorter than key), it is plain ``sdpa``.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if attention_mask is not None or position_ids is None or query.shape[2] != key.shape[2]:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    starts = torch.ones_like(position_ids, dtype=torch.bool)
    starts[:, 1:] = position_ids[:, 1:] != position_ids[:, :-1] + 1
    rows = []
    for row in range(query.shape[0]):
        bounds = starts[row].nonzero().flatten().tolist() + [query.shape[2]]
        pieces = [sdpa_attention_forward(module, query[row:row + 1, :, a:b],
                                         key[row:row + 1, :, a:b], value[row:row + 1, :, a:b],
                                         None, **kwargs)[0]
                  for a, b in zip(bounds[:-1], bounds[1:])]
        rows.append(torch.cat(pieces, dim=1))
    return torch.cat(rows, dim=0), None


def _register() -> None:
    from transformers import AttentionInterface

    AttentionInterface.register(NAME, packed_sdpa)


@contextlib.contextmanager
def per_example_attention(model, batching: str):
    """Within the block, a model that attends with ``sdpa`` uses :func:`packed_sdpa` when the
    batches are packed; anything else (other batching or attention) is left as it is. The
    model's own setting is restored on exit, before anything is saved. Models with sliding-window
    attention keep transformers' mask (one causal call per example would ignore the window)."""
    model = base_model(model)
    current = getattr(model.config, "_attn_implementation", None)
    if batching != "packed" or current != "sdpa" or getattr(model.config, "sliding_window", None):
        yield
        return
    _register()
    model.set_attn_implementation(NAME)
    try:
        yield
    finally:
        model.set_attn_implementation(current)
