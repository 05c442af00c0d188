"""Training only the top decoder layers (``train_top_layers``, the critic's --trainable_layers)."""

from __future__ import annotations

import pytest
import torch

from selfrag.errors import SelfRagError
from selfrag.training.batching import pack_collate
from selfrag.training.model_setup import train_top_layers
from selfrag.training.sft_data import IGNORE_INDEX

M = IGNORE_INDEX
BATCH = pack_collate([{"input_ids": [11, 12, 13, 14, 15], "labels": [M, M, M, 14, 15]},
                      {"input_ids": [21, 22, 23], "labels": [M, M, 23]}])


def _model(path, **config):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, **config)


def test_only_the_top_layers_learn_and_no_gradient_flows_below(tiny_model_path):
    model = _model(tiny_model_path)
    loss_before = model(**BATCH, use_cache=False).loss.detach()
    train_top_layers(model, 1)
    bottom, top = model.get_decoder().layers
    seen = {}

    def record(module, args, kwargs):
        hidden = args[0] if args else kwargs["hidden_states"]
        seen["grad_below"] = hidden.requires_grad

    bottom.register_forward_pre_hook(record, with_kwargs=True)
    loss = model(**BATCH, use_cache=False).loss
    torch.testing.assert_close(loss.detach(), loss_before)  # the forward pass is unchanged
    loss.backward()
    assert seen == {"grad_below": False}
    assert all(p.grad is None and not p.requires_grad for p in bottom.parameters())
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in top.parameters())
    # Tied embeddings: the table still learns as the LM head (the reflection tokens' output rows).
    assert model.get_input_embeddings().weight.grad.abs().sum() > 0


def test_an_untied_input_table_is_frozen(tiny_model_path):
    model = _model(tiny_model_path, tie_word_embeddings=False)
    train_top_layers(model, 1)
    model(**BATCH, use_cache=False).loss.backward()
    assert model.get_input_embeddings().weight.grad is None
    assert model.get_output_embeddings().weight.grad is not None


def test_every_layer_or_none_changes_nothing(tiny_model_path):
    model = _model(tiny_model_path)
    for count in (None, 2):
        train_top_layers(model, count)
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("count", [0, 3])
def test_a_count_outside_the_decoder_is_refused(tiny_model_path, count):
    with pytest.raises(SelfRagError, match=f"between 1 and 2 .*got {count}"):
        train_top_layers(_model(tiny_model_path), count)
