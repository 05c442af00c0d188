"""Keys and values kept per prompt between forward passes (transformers backend).

A :data:`RowCache` holds, for one prompt, every layer's keys and values of its tokens so far,
without padding: ``[(keys, values), ...]``, each ``[heads, tokens, head_dim]``. Keys and values
depend only on the tokens before them and their positions, so a row's cache can be computed in
one batch and used in another, next to rows of other lengths (left-padded, masked):

- :func:`batch_cache` puts rows' caches into one preallocated ``StaticCache``, right-aligned,
  with room for the tokens to come; it is filled in place, on a CPU in one block of memory
  reused from batch to batch (:class:`Arena`);
- :func:`extend` continues rows' caches by more tokens in one forward pass over such a cache (a
  shared prefix's cache continued by each member's own tokens; length-bucketed prefill);
- :func:`static_cache` is the cache all rows of a group decode in, with room for the tokens to
  generate, so no step reallocates it;
- :func:`take` copies one row's real columns back out of a batch cache.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from transformers import StaticCache
from transformers.cache_utils import StaticLayer

RowCache = list[tuple[torch.Tensor, torch.Tensor]]


def cache_length(row: RowCache | None) -> int:
    return 0 if not row else row[0][0].shape[1]


def cache_bytes(row: RowCache | None) -> int:
    return sum(k.nbytes + v.nbytes for k, v in row or ())


def truncate(row: RowCache, length: int) -> RowCache:
    """The cache of the row's first ``length`` tokens (a view)."""
    return [(k[:, :length], v[:, :length]) for k, v in row]


def kv_heads(config) -> tuple[int, int]:
    """Key/value heads per layer and their dimension, from a model's config."""
    config = config.get_text_config(decoder=True)
    heads = getattr(config, "num_key_value_heads", None) or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // config.num_attention_heads
    return heads, head_dim


def take(cache, row: int, columns: torch.Tensor) -> RowCache:
    """Row ``row`` of a batch cache, its ``columns`` only (a copy)."""
    columns = columns.to(cache.layers[0].keys.device)
    return [(layer.keys[row][:, columns], layer.values[row][:, columns]) for layer in cache.layers]


class Arena:
    """One block of memory that every batch cache of a model is cut from, in turn.

    A batch cache is built, used for one forward pass or one ``generate`` call, and copied out of
    (:func:`take`) before the next is built. On a CPU a freshly allocated tensor of this size is
    mapped page by page, one page fault per 4 KiB, at every batch; on a virtual machine a fault
    can cost microseconds. Reusing one block maps its pages once. The block grows to the largest
    cache asked for and stays (a GPU's caching allocator already reuses memory: pass no arena).
    """

    def __init__(self):
        self.block: torch.Tensor | None = None

    def tensors(self, count: int, shape: tuple[int, ...], dtype: torch.dtype,
                device: torch.device) -> list[torch.Tensor]:
        """``count`` tensors of ``shape``, views of the block; their contents are stale."""
        size = math.prod(shape)
        block = self.block
        if (block is None or block.numel() < count * size or block.dtype != dtype
                or block.device != torch.device(device)):
            self.block = None  # freed before the larger one is allocated
            self.block = block = torch.zeros(count * size, dtype=dtype, device=device)
        return [block[i * size:(i + 1) * size].view(shape) for i in range(count)]


def batch_cache(model, rows: Sequence[RowCache | None], width: int, room: int,
                arena: Arena | None = None):
    """``rows`` in one ``StaticCache`` of ``width + room`` columns: each row's cache
    right-aligned in the first ``width`` (zeros before it), ``room`` zero columns after them for
    the tokens to come; and the ``[rows, width]`` mask of the filled columns.

    The cache's layers are filled in place (in ``arena``'s memory when one is given), so no
    intermediate copy of the rows is made; a layer of sliding or chunked attention copies them
    into memory of its own.
    """
    lengths = [cache_length(row) for row in rows]
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for r, length in enumerate(lengths):
        mask[r, width - length:] = 1
    heads, head_dim = kv_heads(model.config)
    shape = (len(rows), heads, width + room, head_dim)
    cache = StaticCache(config=model.config, max_cache_len=width + room)
    count = 2 * len(cache.layers)
    tensors = (arena.tensors(count, shape, model.dtype, model.device) if arena is not None
               else [torch.empty(shape, dtype=model.dtype, device=model.device)
                     for _ in range(count)])
    for index, layer in enumerate(cache.layers):
        keys, values = tensors[2 * index], tensors[2 * index + 1]
        for which, out in enumerate((keys, values)):
            out[:, :, width:].zero_()
            for r, (row, length) in enumerate(zip(rows, lengths)):
                out[r, :, :width - length].zero_()
                if length:
                    out[r, :, width - length:width].copy_(row[index][which])
        if type(layer) is StaticLayer:
            _fill(layer, keys, values, width)
        elif width:  # sliding or chunked attention: the layer copies the rows into its memory
            layer.update(keys[:, :, :width], values[:, :, :width])
    return cache, mask


def _fill(layer: StaticLayer, keys: torch.Tensor, values: torch.Tensor, length: int) -> None:
    """``layer`` made to hold ``keys``/``values`` with its first ``length`` columns filled: the
    state its ``lazy_initialization`` and ``update`` would leave (transformers 5)."""
    layer.keys, layer.values, layer.device = keys, values, keys.device
    layer.batch_size, layer.num_heads, _, layer.k_head_dim = keys.shape
    layer.v_head_dim = values.shape[-1]
    layer.cumulative_length = torch.tensor(length, dtype=torch.long, device=keys.device)
    layer.is_initialized = True


@torch.inference_mode()
def extend(model, rows: Sequence[RowCache | None], tokens: Sequence[Sequence[int]],
           pad_id: int, arena: Arena | None = None) -> list[RowCache]:
    """Each row's cache continued by its ``tokens`` (at least one per row), one forward pass.

    Layout of the batch: ``[pad][row's cache][pad][row's tokens]``; positions count each row's
    real tokens only, so every row computes exactly what it would alone.
    """
    device = model.device
    past = max(cache_length(r) for r in rows)
    width = max(len(t) for t in tokens)
    cache, past_mask = batch_cache(model, rows, past, width, arena)
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


def static_cache(model, rows: Sequence[RowCache], room: int, arena: Arena | None = None):
    """``rows`` in a ``StaticCache`` with ``room`` columns to generate into (:func:`batch_cache`
    at the longest row's width), and the mask of the filled columns."""
    return batch_cache(model, rows, max(cache_length(r) for r in rows), room, arena)
