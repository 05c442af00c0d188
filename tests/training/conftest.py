"""Fixtures of the training tests: a tiny random Llama *without* reflection tokens or pad token."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def plain_tiny_model_path(tiny_model_path, tmp_path_factory) -> str:
    """Like ``tiny_model_path`` but as a raw base model: SmolLM2 vocabulary (49152) only, no
    reflection tokens and no pad token, as Llama-2 is before Self-RAG training."""
    import torch
    from transformers import AutoTokenizer, LlamaForCausalLM

    from selfrag.offline_models import tiny_llama_config
    from selfrag.tokens import REFLECTION_TOKENS

    folder = tmp_path_factory.mktemp("plain-tiny-llama")
    source = Path(tiny_model_path)
    data = json.loads((source / "tokenizer.json").read_text())
    data["added_tokens"] = [t for t in data["added_tokens"] if t["content"] not in REFLECTION_TOKENS]
    (folder / "tokenizer.json").write_text(json.dumps(data))
    config = json.loads((source / "tokenizer_config.json").read_text())
    config.pop("extra_special_tokens", None)
    config.pop("pad_token", None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    assert len(tokenizer) == 49152 and tokenizer.pad_token is None
    torch.manual_seed(1)
    model_config = tiny_llama_config(len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                                     eos_token_id=tokenizer.eos_token_id, pad_token_id=None)
    LlamaForCausalLM(model_config).save_pretrained(folder)
    return str(folder)
