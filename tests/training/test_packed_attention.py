"""Per-example attention over packed rows: the masked computation's numbers, for less work."""

from __future__ import annotations

import json

import pytest
import torch

from selfrag.training.batching import pack_collate, pad_collate
from selfrag.training.loop import TrainConfig, supervised_loss, train
from selfrag.training.packed_attention import NAME, per_example_attention
from selfrag.training.sft_data import IGNORE_INDEX

M = IGNORE_INDEX
EXAMPLES = [{"input_ids": [11, 12, 13, 14, 15, 16, 17], "labels": [M, M, M, M, 15, 16, 17]},
            {"input_ids": [21, 22, 23, 24], "labels": [M, M, 23, M]},
            {"input_ids": [31, 32, 33, 34, 35], "labels": [M, M, M, 34, 35]}]


@pytest.fixture
def model(tiny_model_path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    assert model.config._attn_implementation == "sdpa"
    assert model.config.num_key_value_heads < model.config.num_attention_heads  # GQA is covered
    return model


def _loss_and_grads(model, batch):
    model.zero_grad()
    loss = supervised_loss(model, batch)
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()
                           if p.grad is not None}


def test_loss_and_gradients_equal_the_masked_ones(model):
    batch = pack_collate(EXAMPLES)
    masked, masked_grads = _loss_and_grads(model, batch)
    with per_example_attention(model, "packed"):
        assert model.config._attn_implementation == NAME
        loss, grads = _loss_and_grads(model, batch)
    torch.testing.assert_close(loss, masked)
    assert grads.keys() == masked_grads.keys()
    for name, grad in masked_grads.items():
        torch.testing.assert_close(grads[name], grad, atol=1e-6, rtol=1e-4, msg=name)


def test_each_example_of_a_row_gets_the_logits_it_gets_alone(model):
    batch = pack_collate(EXAMPLES)
    with torch.no_grad(), per_example_attention(model, "packed"):
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits[0]
    start = 0
    for example in EXAMPLES:
        n = len(example["input_ids"])
        with torch.no_grad():
            alone = model(input_ids=torch.tensor([example["input_ids"]])).logits[0]
        torch.testing.assert_close(packed[start:start + n], alone, atol=1e-5, rtol=1e-4)
        start += n
    assert start == packed.shape[0]


def test_several_rows_are_split_each_at_its_own_starts(model):
    # two rows of 11 tokens whose examples start at different places: 7 + 4 and 5 + 4 + 2
    rows = [pack_collate(EXAMPLES[:2]), pack_collate([EXAMPLES[2], EXAMPLES[1], {
        "input_ids": [41, 42], "labels": [M, 42]}])]
    batch = {k: torch.cat([r[k] for r in rows]) for k in rows[0]}
    with torch.no_grad(), per_example_attention(model, "packed"):
        both = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"]).logits
    for i, row in enumerate(rows):
        with torch.no_grad(), per_example_attention(model, "packed"):
            alone = model(input_ids=row["input_ids"], position_ids=row["position_ids"]).logits
        torch.testing.assert_close(both[i:i + 1], alone, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("batching", ["padded", "length_grouped", ""])
def test_other_batching_keeps_the_model_as_it_is(model, batching):
    with per_example_attention(model, batching):
        assert model.config._attn_implementation == "sdpa"
        batch = pad_collate(EXAMPLES, pad_id=0)
        assert torch.isfinite(supervised_loss(model, batch))


def test_the_setting_is_restored_after_an_error(model):
    with pytest.raises(RuntimeError), per_example_attention(model, "packed"):
        raise RuntimeError("boom")
    assert model.config._attn_implementation == "sdpa"


def test_sliding_window_models_keep_the_mask(model):
    model.config.sliding_window = 4
    with per_example_attention(model, "packed"):
        assert model.config._attn_implementation == "sdpa"


def test_lora_models_switch_their_base(model):
    from peft import LoraConfig, get_peft_model

    wrapped = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    with per_example_attention(wrapped, "packed"):
        assert wrapped.get_base_model().config._attn_implementation == NAME
    assert wrapped.get_base_model().config._attn_implementation == "sdpa"


def test_training_saves_a_model_that_loads_with_sdpa(model, tiny_model_path, tmp_path):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from selfrag.training.engines import AccelerateEngine

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_path)
    dataset = Dataset.from_list([{**e, "length": len(e["input_ids"])} for e in EXAMPLES * 2])
    config = TrainConfig(output_dir=str(tmp_path / "out"), per_device_train_batch_size=1,
                         max_seq_length=16, num_train_epochs=1, batching="packed")
    summary = train(AccelerateEngine(1), model, tokenizer, dataset, config)
    assert summary["global_step"] >= 1
    assert model.config._attn_implementation == "sdpa"
    saved = json.loads((tmp_path / "out" / "config.json").read_text())
    assert NAME not in json.dumps(saved)
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out")
    assert reloaded.config._attn_implementation == "sdpa"
