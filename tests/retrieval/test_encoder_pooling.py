"""Contriever encoder: mean pooling over the attention mask, CLS pooling, L2 normalisation."""

import numpy as np
import pytest
import torch

from selfrag.errors import SelfRagError
from selfrag.retrieval.encoder import DEFAULT_ENCODER, pool, resolve_encoder


def test_average_pooling_ignores_padded_positions():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]],
                           [[5.0, 6.0], [7.0, 8.0], [9.0, 10.0]]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    expected = torch.tensor([[2.0, 3.0], [7.0, 8.0]])  # (1+3)/2, (2+4)/2 ; (5+7+9)/3, ...
    torch.testing.assert_close(pool(hidden, mask, "average"), expected)


def test_cls_pooling_takes_first_position_and_normalize_gives_unit_norm():
    hidden = torch.tensor([[[3.0, 4.0], [1.0, 1.0]]])
    mask = torch.tensor([[1, 1]])
    torch.testing.assert_close(pool(hidden, mask, "cls"), torch.tensor([[3.0, 4.0]]))
    torch.testing.assert_close(pool(hidden, mask, "cls", normalize=True),
                               torch.tensor([[0.6, 0.8]]))


def test_unknown_pooling_is_refused():
    with pytest.raises(SelfRagError, match="unknown pooling"):
        pool(torch.zeros(1, 1, 2), torch.ones(1, 1), "max")


def test_encoder_matches_a_hand_computed_mean_of_hidden_states(tiny_encoder):
    texts = ["a short text", "a somewhat longer text about Paris and France"]
    got = tiny_encoder.encode(texts, batch_size=2)
    tok = tiny_encoder.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = tiny_encoder.model(**tok).last_hidden_state.numpy()
    mask = tok["attention_mask"].numpy()
    for i in range(2):
        n = mask[i].sum()
        np.testing.assert_allclose(got[i], hidden[i, :n].mean(axis=0), rtol=1e-4, atol=1e-5)
    assert tiny_encoder.pooling == "average" and not tiny_encoder.normalize  # Contriever setup


def test_encoding_does_not_depend_on_batching_or_order(tiny_encoder):
    texts = ["one", "two words", "three words here", "x " * 30]
    together = tiny_encoder.encode(texts, batch_size=4)
    alone = np.stack([tiny_encoder.encode([t])[0] for t in texts])
    np.testing.assert_allclose(together, alone, rtol=1e-4, atol=1e-5)


def test_default_alias_is_minilm_with_mean_pooling_unit_vectors_and_384_dims(minilm):
    assert resolve_encoder(DEFAULT_ENCODER).endswith("model")
    assert (minilm.dim, minilm.pooling, minilm.normalize, minilm.max_length) == (
        384, "average", True, 256)
    q, good, bad = minilm.encode(["What is Henry Feilden's occupation?",
                                  "Henry Feilden was an English Conservative Party politician.",
                                  "Photosynthesis converts light into chemical energy."])
    np.testing.assert_allclose(np.linalg.norm(good), 1.0, rtol=1e-5)
    assert q @ good > q @ bad + 0.2
