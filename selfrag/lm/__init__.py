"""LM backends behind one interface (:class:`selfrag.lm.base.LanguageModel`).

:mod:`selfrag.lm.openai_completions` is not one of them: it is the client of OpenAI-compatible
servers (text in, text out, no log-probabilities) used by the OpenAI baselines and the critic
labelling.
"""

from __future__ import annotations

from selfrag.lm.base import Generation, GenerationRequest, LanguageModel

BACKENDS = ("hf", "vllm")


def load_lm(backend: str, model_name_or_path: str, *, device: str | None = None,
            dtype: str | None = None, batch_size: int = 16, world_size: int = 1,
            download_dir: str | None = ".cache", tokenizer_path: str | None = None) -> LanguageModel:
    """Build a backend by name: ``hf`` (transformers, CPU/GPU, default) or ``vllm`` (GPU)."""
    if backend == "hf":
        from selfrag.lm.hf import HFLanguageModel

        return HFLanguageModel(model_name_or_path, device=device, dtype=dtype,
                               batch_size=batch_size, tokenizer_path=tokenizer_path)
    if backend == "vllm":
        from selfrag.lm.vllm import VLLMLanguageModel

        return VLLMLanguageModel(model_name_or_path, dtype=dtype or "half", world_size=world_size,
                                 download_dir=download_dir, tokenizer_path=tokenizer_path)
    raise ValueError(f"unknown backend {backend!r}; choose from {BACKENDS}")


__all__ = ["BACKENDS", "Generation", "GenerationRequest", "LanguageModel", "load_lm"]
