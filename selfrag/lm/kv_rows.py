"""Keys and values kept per prompt between forward passes (transformers backend).

A :data:`RowCache` holds, for one prompt, every layer's keys and values of its tokens so far,
without padding: ``[(keys, values), ...]``, each ``[heads, tokens, head_dim]``. Keys and values
depend only on the tokens before them and their positions, so a row's cache can be computed in
one batch and used in another, next to rows of other lengths (left-padded, masked):

- :func:`extend` continues rows' caches by more tokens in one forward pass (a shared prefix's
  cache continued by each member's own tokens; length-bucketed prefill);
- :func:`static_cache` stacks rows' caches into one preallocated ``StaticCache`` with room for
  the tokens to generate, so all rows decode together and no step reallocates the cache;
- :func:`take` copies one row's real columns back out of a batch cache.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import DynamicCache, StaticCache

RowCache = list[tuple[torch.Tensor, torch.Tensor]]


def cache_length(row: RowCache | None) -> int:
    return 0 if not row else row[0][0].shape[1]


def cache_bytes(row: RowCache | None) -> int:
    return sum(k.nbytes + v.nbytes for k, v in row or ())


def truncate(row: RowCache, length: int) -> RowCache:
    """The cache of the row's first ``length`` tokens (a view)."""
    return [(k[:, :length], v[:, :length]) for k, v in row]


def take(cache, row: int, columns: torch.Tensor) -> RowCache:
    """Row ``row`` of a batch cache (``DynamicCache``/``StaticCache``), its ``columns`` only
    (a copy)."""
    columns = columns.to(cache.layers[0].keys.device)
    return [(layer.keys[row][:, columns], layer.values[row][:, columns]) for layer in cache.layers]


def stack(rows: Sequence[RowCache | None], width: int):
    """Per layer ``(keys, values)`` of shape ``[rows, heads, width, head_dim]``, each row's cache
    right-aligned (left padding of zeros), and the ``[rows, width]`` mask of its real columns.

    Returns ``(layers, mask)``; ``layers`` is empty when ``width`` is 0.
    """
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row in enumerate(rows):
        mask[r, width - cache_length(row):] = 1
    if width == 0:
        return [], mask
    first = next(row for row in rows if row)
    template, stacked = first[0][0], []
    heads, _, dim = template.shape
    for layer in range(len(first)):
        pair = []
        for which in (0, 1):
            out = template.new_zeros((len(rows), heads, width, dim))
            for r, row in enumerate(rows):
                if row:
                    tensor = row[layer][which]
                    out[r, :, width - tensor.shape[1]:] = tensor
            pair.append(out)
        stacked.append(tuple(pair))
    return stacked, mask


@torch.inference_mode()
def extend(model, rows: Sequence[RowCache | None], tokens: Sequence[Sequence[int]],
           pad_id: int) -> list[RowCache]:
    """Each row's cache continued by its ``tokens`` (at least one per row), one forward pass.

    Layout of the batch: ``[pad][row's cache][pad][row's tokens]``; positions count each row's
    real tokens only, so every row computes exactly what it would alone.
    """
    device = model.device
    past = max(cache_length(r) for r in rows)
    width = max(len(t) for t in tokens)
    stacked, past_mask = stack(rows, past)
    cache = DynamicCache()
    for index, (keys, values) in enumerate(stacked):
        cache.update(keys.to(device), values.to(device), index)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    new_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, row_tokens in enumerate(tokens):
        ids[r, width - len(row_tokens):] = torch.tensor(list(row_tokens))
        new_mask[r, width - len(row_tokens):] = 1
    mask = torch.cat([past_mask, new_mask], dim=1)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, past:]
    model(input_ids=ids.to(device), attention_mask=mask.to(device),
          position_ids=positions.to(device), cache=cache, use_cache=True, logits_to_keep=1)
    return [take(cache, r, mask[r].nonzero().squeeze(1)) for r in range(len(rows))]


def static_cache(model, rows: Sequence[RowCache], room: int):
    """``rows`` stacked into a ``StaticCache`` of ``width + room`` columns, and the mask of the
    filled ``width`` columns (``width``: the longest row)."""
    width = max(cache_length(r) for r in rows)
    stacked, mask = stack(rows, width)
    cache = StaticCache(config=model.config, max_cache_len=width + room)
    for index, (keys, values) in enumerate(stacked):
        cache.update(keys.to(model.device), values.to(model.device), index)
    return cache, mask
