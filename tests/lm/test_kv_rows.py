"""selfrag/lm/kv_rows.py: batch caches filled in place, in one reused block of memory."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from selfrag.lm import kv_rows


def test_the_arena_reuses_its_block_and_grows_only_when_asked_for_more():
    arena = kv_rows.Arena()
    a, b = arena.tensors(2, (2, 3), torch.float32, torch.device("cpu"))
    block = arena.block.data_ptr()
    assert a.shape == b.shape == (2, 3) and arena.block.numel() == 12
    assert b.data_ptr() - a.data_ptr() == 6 * 4  # side by side, not overlapping
    small, = arena.tensors(1, (5,), torch.float32, torch.device("cpu"))
    assert small.data_ptr() == block  # fits: the same memory
    bigger = arena.tensors(3, (2, 3), torch.float32, torch.device("cpu"))
    assert arena.block.numel() == 18 and len(bigger) == 3
    arena.tensors(1, (2,), torch.float64, torch.device("cpu"))
    assert arena.block.dtype == torch.float64  # another dtype: a block of its own


@pytest.fixture(scope="module")
def model(tiny_model_path):
    return AutoModelForCausalLM.from_pretrained(tiny_model_path, dtype=torch.float32).eval()


def row_cache(model, length: int, fill: float) -> kv_rows.RowCache:
    config = model.config
    shape = (config.num_key_value_heads, length, config.hidden_size // config.num_attention_heads)
    return [(torch.full(shape, fill + layer), torch.full(shape, -fill - layer))
            for layer in range(config.num_hidden_layers)]


def test_a_batch_cache_right_aligns_rows_and_zeroes_the_rest_of_a_stale_arena(model):
    arena = kv_rows.Arena()
    heads = model.config.num_key_value_heads
    dim = model.config.hidden_size // model.config.num_attention_heads
    for stale in arena.tensors(4 * model.config.num_hidden_layers, (2, heads, 8, dim),
                               model.dtype, model.device):
        stale.fill_(float("nan"))
    rows = [row_cache(model, 2, 1.0), None, row_cache(model, 4, 5.0)]
    cache, mask = kv_rows.batch_cache(model, rows, width=4, room=3, arena=arena)
    assert mask.tolist() == [[0, 0, 1, 1], [0, 0, 0, 0], [1, 1, 1, 1]]
    assert cache.get_seq_length() == 4 and cache.layers[0].get_max_length() == 7
    for index, layer in enumerate(cache.layers):
        keys, values = layer.keys, layer.values
        assert keys.shape == (3, heads, 7, dim) and not keys.isnan().any()
        assert (keys[0, :, 2:4] == 1.0 + index).all() and (values[0, :, 2:4] == -1.0 - index).all()
        assert (keys[0, :, :2] == 0).all() and (keys[1] == 0).all() and (keys[:, :, 4:] == 0).all()
        assert (keys[2, :, :4] == 5.0 + index).all()
        assert keys.untyped_storage().data_ptr() == arena.block.untyped_storage().data_ptr()


def test_extending_in_an_arena_gives_the_caches_of_one_plain_forward_pass(model):
    tokens = [[5, 6, 7, 8, 9], [10, 11]]
    full = [model(input_ids=torch.tensor([t]), use_cache=True).past_key_values for t in tokens]
    arena = kv_rows.Arena()
    heads = kv_rows.extend(model, [None, None], [t[:3] for t in tokens[:1]] + [tokens[1][:1]],
                           pad_id=0, arena=arena)
    rows = kv_rows.extend(model, heads, [tokens[0][3:], tokens[1][1:]], pad_id=0, arena=arena)
    for row, cache in zip(rows, full):
        assert kv_rows.cache_length(row) == cache.get_seq_length()
        for (keys, values), layer in zip(row, cache.layers):
            torch.testing.assert_close(keys, layer.keys[0], rtol=1e-5, atol=1e-5)
            torch.testing.assert_close(values, layer.values[0], rtol=1e-5, atol=1e-5)
