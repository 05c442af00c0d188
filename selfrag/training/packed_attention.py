"""Attention over packed rows one example at a time (training with ``--batching packed``).

A packed row concatenates several examples with ``position_ids`` restarting at each one
(:func:`selfrag.training.batching.pack_collate`). With ``sdpa`` transformers turns that into a
block-diagonal causal mask over the whole row, and scaled-dot-product attention then computes
every (query, key) pair of the row, masked or not, through its masked (slower) kernel: a critic
row of 1,536 tokens holds ~7 examples, so ~6/7 of that work is thrown away. ``sdpa_packed``
computes the same attention as one causal call per example, with no mask; the loss and gradients
are those of the masked computation (tested). On 2 CPU cores the small-scale experiment's critic
steps (SmolLM2-135M, rows of 4 x 384 tokens) took 5.4 s instead of 11.2;
``scripts/bench_training.py --attention row,example`` compares the two on any data.

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
    ``(batch, tokens, heads, head_dim)`` like every attention function of transformers. The
    examples are found by transformers' own rule for packed rows
    (``find_packed_sequence_indices``: a new one wherever ``position_ids`` does not continue the
    previous token's by one). With an attention mask, no ``position_ids`` or a cache (query
    shorter than key), it is plain ``sdpa``.
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward
    from transformers.masking_utils import find_packed_sequence_indices

    if attention_mask is not None or position_ids is None or query.shape[2] != key.shape[2]:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    examples = find_packed_sequence_indices(position_ids)
    if examples is None:  # one example per row: causal attention over the whole row
        return sdpa_attention_forward(module, query, key, value, None, **kwargs)
    rows = []
    for row in range(query.shape[0]):
        sizes = torch.unique_consecutive(examples[row], return_counts=True)[1].tolist()
        pieces = zip(*(t[row:row + 1].split(sizes, dim=2) for t in (query, key, value)))
        rows.append(torch.cat([sdpa_attention_forward(module, q, k, v, None, **kwargs)[0]
                               for q, k, v in pieces], dim=1))
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
