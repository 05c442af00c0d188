"""A baseline run's backend (``--backend``: OpenAI, or a local ``hf``/``vllm`` model) and what it
generates with on it: a text generator, or a RAG model (``hf`` only)."""

from __future__ import annotations

from dataclasses import dataclass

from selfrag.baselines.runner import RAG_MODES, BackendGenerator, OpenAIGenerator
from selfrag.errors import SelfRagError
from selfrag.lm.openai_completions import (
    OpenAICompletionClient,
    is_openai_model,
    resolve_api_key,
)

BASELINE_BACKENDS = ("auto", "hf", "vllm", "openai")


@dataclass(frozen=True)
class ModelSpec:
    """Which model, and how to reach it.

    Attributes:
        model_name: HF id/folder/offline alias, or an OpenAI model name.
        backend: ``auto`` (OpenAI for OpenAI model names, else ``hf``), ``hf``, ``vllm``, ``openai``.
        device, dtype, batch_size, world_size, download_dir, tokenizer_path: local backends.
        api_key_file: the original's ``--api_key`` file (OPENAI_API_KEY is preferred).
        base_url, api, max_retries, backoff: OpenAI-compatible servers.
    """

    model_name: str
    backend: str = "auto"
    device: str | None = None
    dtype: str | None = None
    batch_size: int = 5
    world_size: int = 1
    download_dir: str | None = ".cache"
    tokenizer_path: str | None = None
    api_key_file: str | None = None
    base_url: str | None = None
    api: str | None = None
    max_retries: int = 6
    backoff: float = 1.0


def resolve_backend(spec: ModelSpec) -> str:
    if spec.backend not in BASELINE_BACKENDS:
        raise SelfRagError(f"--backend: {spec.backend!r} is not one of {BASELINE_BACKENDS}")
    if spec.backend != "auto":
        return spec.backend
    return "openai" if is_openai_model(spec.model_name) else "hf"


def build_generation(spec: ModelSpec, mode: str, max_new_tokens: int, faithful: bool = False,
                     seed: int = 0) -> tuple[object | None, object | None]:
    """``(generator, rag)`` for a run: exactly one of them is set.

    Raises:
        SelfRagError: a RAG mode on a backend without full next-token distributions.
    """
    backend = resolve_backend(spec)
    if backend == "openai":
        if mode in RAG_MODES:
            raise SelfRagError(f"--mode {mode} needs token probabilities under every passage; "
                               "OpenAI models do not expose them: use --backend hf")
        client = OpenAICompletionClient(spec.model_name, resolve_api_key(spec.api_key_file),
                                        spec.base_url, spec.api, max_retries=spec.max_retries,
                                        backoff=spec.backoff)
        return OpenAIGenerator(client, max_new_tokens, faithful), None
    if mode in RAG_MODES and backend != "hf":
        raise SelfRagError(f"--mode {mode} is implemented on the hf backend (--backend hf)")

    from selfrag.lm import load_lm

    lm = load_lm(backend, spec.model_name, device=spec.device, dtype=spec.dtype,
                 batch_size=spec.batch_size, world_size=spec.world_size,
                 download_dir=spec.download_dir, tokenizer_path=spec.tokenizer_path)
    if mode == "rag_sequence":
        from selfrag.baselines.hf_steps import HFSequenceScorer
        from selfrag.baselines.rag import RagSequence

        return None, RagSequence(lm, HFSequenceScorer.from_lm(lm), max_new_tokens)
    if mode == "rag_token":
        from selfrag.baselines.hf_steps import HFNextTokenModel
        from selfrag.baselines.rag import RagToken

        return None, RagToken(HFNextTokenModel.from_lm(lm), max_new_tokens, max_rows=spec.batch_size)
    return BackendGenerator(lm, max_new_tokens, faithful, seed), None
