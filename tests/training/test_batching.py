"""Batching modes: every example once, equal shards per rank, packing that changes nothing."""

from __future__ import annotations

import pytest
import torch

from selfrag.training.batching import BatchSampler, pack_collate, pad_collate
from selfrag.training.sft_data import IGNORE_INDEX

LENGTHS = [5, 40, 7, 33, 12, 9, 28, 3, 17, 21, 8, 30]


@pytest.mark.parametrize("mode", ["padded", "length_grouped", "packed"])
def test_every_example_appears_exactly_once_per_epoch(mode):
    sampler = BatchSampler(LENGTHS, mode, batch_size=3, max_tokens=48, seed=1)
    seen = sorted(i for batch in sampler for i in batch)
    assert seen == list(range(len(LENGTHS)))
    if mode == "packed":
        assert all(sum(LENGTHS[i] for i in batch) <= 48 for batch in sampler)
    else:
        assert all(len(batch) <= 3 for batch in sampler)


def test_length_grouping_reduces_padding():
    lengths = [(i * 37) % 200 + 1 for i in range(300)]
    waste = {}
    for mode in ("padded", "length_grouped"):
        batches = list(BatchSampler(lengths, mode, batch_size=8, max_tokens=0, seed=0))
        waste[mode] = sum(max(lengths[i] for i in b) * len(b) - sum(lengths[i] for i in b)
                          for b in batches)
    assert waste["length_grouped"] < waste["padded"] / 5


def test_epochs_reshuffle_deterministically():
    a = BatchSampler(LENGTHS, "padded", 3, 0, seed=7)
    b = BatchSampler(LENGTHS, "padded", 3, 0, seed=7)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first and list(b) == first


def test_rank_shards_are_disjoint_and_equally_long():
    shards = [list(BatchSampler(LENGTHS, "padded", 5, 0, rank=r, world_size=2)) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 2  # 3 batches padded to 4 by wrapping around
    assert sorted({i for s in shards for b in s for i in b}) == list(range(len(LENGTHS)))


def test_pad_collate_pads_right_with_masked_labels():
    batch = pad_collate([{"input_ids": [1, 2, 3], "labels": [IGNORE_INDEX, 2, 3]},
                         {"input_ids": [4], "labels": [4]}], pad_id=0)
    assert batch["input_ids"].tolist() == [[1, 2, 3], [4, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert batch["labels"].tolist() == [[IGNORE_INDEX, 2, 3], [4, IGNORE_INDEX, IGNORE_INDEX]]


def test_packed_row_gives_the_same_token_losses_as_separate_examples(tiny_model_path):
    """Block-diagonal attention from restarting position_ids: no cross-example leakage."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_path).eval()
    examples = [{"input_ids": [11, 12, 13, 14, 15, 16], "labels": [IGNORE_INDEX] * 2 + [13, 14, 15, 16]},
                {"input_ids": [21, 22, 23, 24], "labels": [IGNORE_INDEX, 22, 23, 24]},
                {"input_ids": [31, 32, 33, 34, 35], "labels": [IGNORE_INDEX] * 3 + [34, 35]}]
    packed = pack_collate(examples)
    assert packed["position_ids"].tolist() == [[0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 0, 1, 2, 3, 4]]
    with torch.no_grad():
        logits = model(input_ids=packed["input_ids"], position_ids=packed["position_ids"],
                       use_cache=False).logits[0]
        offset = 0
        for ex in examples:
            n = len(ex["input_ids"])
            alone = model(input_ids=torch.tensor([ex["input_ids"]]), use_cache=False).logits[0]
            torch.testing.assert_close(logits[offset:offset + n], alone, atol=1e-4, rtol=1e-4)
            offset += n
        total = sum(sum(lab != IGNORE_INDEX for lab in ex["labels"][1:]) for ex in examples)
        assert int((packed["labels"] != IGNORE_INDEX).sum()) == total
