"""Fixtures for the retrieval tests: a tiny random BERT, small corpora, the MiniLM encoder."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUNDLED_CORPUS = REPO / "eval_data" / "corpus" / "corpus.jsonl"


@pytest.fixture(scope="session")
def tiny_bert_path(tmp_path_factory) -> str:
    """A 2-layer, 32-wide random BERT with the MiniLM (bert-base-uncased) tokenizer."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertModel

    from selfrag.retrieval.encoder import DEFAULT_ENCODER, resolve_encoder

    folder = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = AutoTokenizer.from_pretrained(resolve_encoder(DEFAULT_ENCODER))
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=512)
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="session")
def tiny_encoder(tiny_bert_path):
    from selfrag.retrieval.encoder import Encoder

    return Encoder.load(tiny_bert_path, device="cpu")


@pytest.fixture(scope="session")
def minilm():
    from selfrag.retrieval.encoder import Encoder

    return Encoder.load(device="cpu")


@pytest.fixture()
def small_corpus(tmp_path) -> Path:
    """The first 40 passages of the bundled demo corpus (ctxs of the first PopQA questions)."""
    path = tmp_path / "corpus.jsonl"
    with BUNDLED_CORPUS.open(encoding="utf-8") as handle:
        path.write_text("".join(line for _, line in zip(range(40), handle)), encoding="utf-8")
    return path
