"""Shared fixtures: tiny random models, and the `slow`/`gpu` markers."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except ImportError:
        has_gpu = False
    if has_gpu:
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_model_path() -> str:
    """Folder of a 2-layer random Llama with the SmolLM2 tokenizer and the reflection tokens."""
    from selfrag.offline_models import ensure_tiny_random_model

    return str(ensure_tiny_random_model())


@pytest.fixture(scope="session")
def base_tokenizer():
    """The SmolLM2 tokenizer with the 15 reflection tokens."""
    from transformers import AutoTokenizer

    from selfrag.offline_models import ensure_base_tokenizer

    return AutoTokenizer.from_pretrained(ensure_base_tokenizer())


@pytest.fixture()
def plain_tokenizer():
    """The SmolLM2 tokenizer as shipped (no reflection tokens); a fresh copy per test."""
    from transformers import AutoTokenizer

    from selfrag.offline_models import _gguf_location

    folder, gguf = _gguf_location()
    return AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
