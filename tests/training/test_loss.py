"""The training loss with the LM head applied only where a supervised token is predicted."""

from __future__ import annotations

import pytest
import torch

from selfrag.training.batching import pack_collate, pad_collate
from selfrag.training.loop import _accepts_logits_to_keep, supervised_loss
from selfrag.training.sft_data import IGNORE_INDEX

M = IGNORE_INDEX
EXAMPLES = [{"input_ids": [11, 12, 13, 14, 15, 16], "labels": [M, M, M, M, 15, 16]},
            {"input_ids": [21, 22, 23, 24], "labels": [M, M, 23, M]},
            {"input_ids": [31, 32, 33, 34, 35], "labels": [M, M, M, M, 35]}]


def _loss_and_grads(model, loss):
    model.zero_grad()
    loss.backward()
    return loss.detach(), {n: p.grad.clone() for n, p in model.named_parameters()
                           if p.grad is not None}


@pytest.mark.parametrize("collate", ["padded", "packed"])
def test_loss_and_gradients_equal_the_full_head_ones(tiny_model_path, collate):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_path)
    batch = pad_collate(EXAMPLES, pad_id=0) if collate == "padded" else pack_collate(EXAMPLES)
    full, full_grads = _loss_and_grads(model, model(**batch, use_cache=False).loss)
    kept, kept_grads = _loss_and_grads(model, supervised_loss(model, batch))
    torch.testing.assert_close(kept, full)
    assert kept_grads.keys() == full_grads.keys()
    for name, grad in full_grads.items():
        torch.testing.assert_close(kept_grads[name], grad, atol=1e-6, rtol=1e-4, msg=name)


def test_lora_models_take_the_kept_positions_too(tiny_model_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model_path),
                           LoraConfig(r=2, target_modules=["q_proj", "v_proj"]))
    assert _accepts_logits_to_keep(model)
    batch = pack_collate(EXAMPLES)
    torch.testing.assert_close(supervised_loss(model, batch),
                               model(**batch, use_cache=False).loss)


def test_a_model_without_logits_to_keep_is_detected():
    class Old(torch.nn.Module):
        def forward(self, input_ids, labels=None, use_cache=None):
            raise AssertionError("not called")

    assert not _accepts_logits_to_keep(Old())
