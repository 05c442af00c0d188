"""Batching of encoded SFT examples: padded (as the original), length-grouped, or packed.

- ``padded``: random order, ``batch_size`` examples per batch padded to the longest (the original's
  ``DataCollatorForSeq2Seq`` behaviour in ``finetune.py``). Short examples next to a long one waste
  most of the batch on padding.
- ``length_grouped``: same batch size, but examples of similar length share a batch (shuffle,
  sort inside mega-batches of ``50 x batch_size``, shuffle the batches). Same optimisation
  semantics as ``padded``, far less padding.
- ``packed``: examples are concatenated into rows of at most ``max_tokens`` tokens with
  ``position_ids`` restarting at 0 for each example and no attention mask; transformers then builds
  a block-diagonal causal mask, so examples never attend to each other. The number of examples per
  optimizer step varies (it is a token budget), so the step count differs from ``padded``.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence

import torch

from selfrag.training.sft_data import IGNORE_INDEX

BATCHING_MODES = ("padded", "length_grouped", "packed")
_MEGABATCH_MULT = 50


class BatchSampler:
    """Yields lists of dataset indices; deterministic per (seed, epoch); optional rank sharding.

    With ``world_size > 1`` every rank gets the same number of batches (the list is padded by
    wrapping around), so collective operations stay in step.
    """

    def __init__(self, lengths: Sequence[int], mode: str, batch_size: int, max_tokens: int,
                 seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1):
        if mode not in BATCHING_MODES:
            raise ValueError(f"batching mode must be one of {BATCHING_MODES}, got {mode!r}")
        self.lengths, self.mode, self.batch_size = list(lengths), mode, batch_size
        self.max_tokens, self.seed, self.shuffle = max_tokens, seed, shuffle
        self.rank, self.world_size, self.epoch = rank, world_size, 0
        self._cache: tuple[int, list[list[int]]] | None = None

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _batches(self) -> list[list[int]]:
        rng = random.Random(self.seed + self.epoch)
        order = list(range(len(self.lengths)))
        if self.shuffle:
            rng.shuffle(order)
        if self.mode == "padded":
            return [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.mode == "length_grouped":
            mega = self.batch_size * _MEGABATCH_MULT
            batches = []
            for i in range(0, len(order), mega):
                chunk = sorted(order[i:i + mega], key=lambda j: -self.lengths[j])
                batches += [chunk[k:k + self.batch_size] for k in range(0, len(chunk), self.batch_size)]
            if self.shuffle:
                rng.shuffle(batches)
            return batches
        return self._pack(order, rng)

    def _pack(self, order: list[int], rng: random.Random) -> list[list[int]]:
        """First-fit decreasing inside mega-chunks: rows of at most ``max_tokens`` tokens."""
        mega = max(self.batch_size, 1) * _MEGABATCH_MULT
        bins: list[list[int]] = []
        for i in range(0, len(order), mega):
            chunk = sorted(order[i:i + mega], key=lambda j: -self.lengths[j])
            fill: list[int] = []
            chunk_bins: list[list[int]] = []
            for j in chunk:
                n = min(self.lengths[j], self.max_tokens)
                for b, used in enumerate(fill):
                    if used + n <= self.max_tokens:
                        chunk_bins[b].append(j)
                        fill[b] += n
                        break
                else:
                    chunk_bins.append([j])
                    fill.append(n)
            bins += chunk_bins
        if self.shuffle:
            rng.shuffle(bins)
        return bins

    def _shard(self) -> list[list[int]]:
        if self._cache is None or self._cache[0] != self.epoch:
            batches = self._batches()
            if self.world_size > 1:
                while len(batches) % self.world_size:
                    batches.append(batches[len(batches) % max(len(batches), 1)])
                batches = batches[self.rank::self.world_size]
            self._cache = (self.epoch, batches)
        return self._cache[1]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(list(self._shard()))

    def __len__(self) -> int:
        return len(self._shard())


def pad_collate(features: list[dict], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-pad to the longest example: pad id, attention 0, label -100."""
    width = max(len(f["input_ids"]) for f in features)
    ids = torch.full((len(features), width), pad_id, dtype=torch.long)
    labels = torch.full((len(features), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(features), width), dtype=torch.long)
    for row, f in enumerate(features):
        n = len(f["input_ids"])
        ids[row, :n] = torch.tensor(f["input_ids"])
        labels[row, :n] = torch.tensor(f["labels"])
        mask[row, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def pack_collate(features: list[dict]) -> dict[str, torch.Tensor]:
    """Concatenate examples into one row with restarting ``position_ids`` and no attention mask.

    The label of each example's first token is masked so that no token is ever predicted from
    the end of the previous example (it is a prompt token, masked anyway).
    """
    ids, labels, positions = [], [], []
    for f in features:
        n = len(f["input_ids"])
        ids += f["input_ids"]
        labels += [IGNORE_INDEX] + list(f["labels"][1:])
        positions += range(n)
    rows = {"input_ids": ids, "labels": labels, "position_ids": positions}
    return {name: torch.tensor([values], dtype=torch.long) for name, values in rows.items()}


class Collator:
    """Picklable collate function for a batching mode (DataLoader workers may need to pickle it)."""

    def __init__(self, mode: str, pad_id: int):
        self.mode, self.pad_id = mode, pad_id

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        if self.mode == "packed":
            return pack_collate(features)
        return pad_collate(features, self.pad_id)


def make_loader(dataset, mode: str, batch_size: int, max_seq_length: int, pad_id: int,
                seed: int = 0, rank: int = 0, world_size: int = 1) -> torch.utils.data.DataLoader:
    """A DataLoader over an encoded dataset (columns ``input_ids``, ``labels``, ``length``).

    In ``packed`` mode the token budget of a row is ``batch_size x max_seq_length``.
    """
    columns = dataset.select_columns(["input_ids", "labels"])
    sampler = BatchSampler(dataset["length"], mode, batch_size, batch_size * max_seq_length,
                           seed=seed, rank=rank, world_size=world_size)
    return torch.utils.data.DataLoader(columns, batch_sampler=sampler,
                                       collate_fn=Collator(mode, pad_id))
