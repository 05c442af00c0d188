"""The ``Retriever`` of the original ``passage_retrieval.py``, plus a batch API for inference.

The original's method names and arguments are kept so its README demo works unchanged::

    retriever = Retriever({})
    retriever.setup_retriever_demo(model_path, passages_path, "embeddings_dir/*", n_docs=5,
                                   save_or_load_index=False)
    retriever.search_document_demo(query, 5)

Differences from the original, on purpose: returned passages carry their faiss ``score`` (the
original dropped it); queries are encoded in batches (:meth:`Retriever.search_batch`);
an index can be any faiss factory string and is saved with metadata that is checked at load.
"""

from __future__ import annotations

import logging
import re
from argparse import Namespace
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from selfrag.errors import SelfRagError
from selfrag.retrieval.disk_build import build_disk_index
from selfrag.retrieval.disk_vectors import split_disk_refine
from selfrag.retrieval.embeddings import read_shards, shard_files_signature
from selfrag.retrieval.encoder import DEFAULT_ENCODER, Encoder
from selfrag.retrieval.index import PassageIndex, build_from_shards
from selfrag.retrieval.passages import Passage, load_passages, prepare_text

logger = logging.getLogger(__name__)

# Defaults of the original passage_retrieval.py and of the options added here.
DEFAULTS = {
    "model_name_or_path": DEFAULT_ENCODER, "passages": None, "passages_embeddings": None,
    "n_docs": 100, "per_gpu_batch_size": 64, "save_or_load_index": False, "no_fp16": False,
    "question_maxlength": 512, "indexing_batch_size": 1_000_000, "projection_size": None,
    "n_subquantizers": 0, "n_bits": 8, "lowercase": False, "normalize_text": False,
    "index_factory": "Flat", "search_params": "", "allow_pickle_embeddings": False,
    "index_dir": None, "use_gpu_index": True,
}
DEMO_QUERY_BATCH, DEMO_QUERY_MAXLENGTH = 16, 200  # the original setup/search_document_demo


def _as_namespace(args) -> SimpleNamespace:
    given = vars(args) if isinstance(args, (Namespace, SimpleNamespace)) else dict(args or {})
    return SimpleNamespace(**{**DEFAULTS, **{k: v for k, v in given.items() if v is not None
                                             or k not in DEFAULTS}})


def index_folder(embeddings_glob: str, factory: str) -> Path:
    """Where ``save_or_load_index`` keeps an index: next to the embeddings, one per factory."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", factory).strip("-")
    return Path(embeddings_glob).parent / f"index_{slug}"


class Retriever:
    """Dense passage retriever: encoder + faiss index + passage store.

    Args:
        args: a dict / argparse namespace with the keys of :data:`DEFAULTS` (missing keys take
            the defaults); ``{}`` is enough for the ``*_demo`` methods.
        model, tokenizer: an already loaded HF encoder and tokenizer (optional).
    """

    def __init__(self, args=None, model=None, tokenizer=None):
        self.args = _as_namespace(args)
        self.encoder: Encoder | None = None
        if model is not None:
            if tokenizer is None:
                raise SelfRagError("Retriever(model=...) also needs the tokenizer")
            name = self.args.model_name_or_path or model.config.name_or_path
            self.encoder = Encoder(model, tokenizer, name=name)
        self.index: PassageIndex | None = None
        self.passages: dict[str, Passage] = {}

    @classmethod
    def from_components(cls, encoder: Encoder, index: PassageIndex,
                        passages: list[Passage] | dict[str, Passage], **args) -> Retriever:
        """A ready retriever from loaded parts (used by the demo and tests)."""
        retriever = cls(args)
        retriever.encoder, retriever.index = encoder, index
        retriever.passages = (passages if isinstance(passages, dict)
                              else {p["id"]: p for p in passages})
        return retriever

    # ------------------------------------------------------------------------------- setup
    def setup_retriever(self) -> None:
        """Load the encoder, the index (built from the embedding shards or loaded) and passages."""
        a = self.args
        if not a.passages or not a.passages_embeddings:
            raise SelfRagError("setup_retriever needs args.passages and args.passages_embeddings")
        if self.encoder is None:
            self.encoder = Encoder.load(a.model_name_or_path, fp16=not a.no_fp16)
        if a.projection_size is not None and a.projection_size != self.encoder.dim:
            raise SelfRagError(f"--projection_size {a.projection_size} != dimension "
                               f"{self.encoder.dim} of encoder {a.model_name_or_path!r}")
        factory = f"PQ{a.n_subquantizers}x{a.n_bits}" if a.n_subquantizers > 0 else a.index_factory
        self.index = self._load_or_build_index(a.passages_embeddings, factory,
                                               a.save_or_load_index, a.indexing_batch_size)
        self._load_passages(a.passages)

    def setup_retriever_demo(self, model_name_or_path: str, passages: str,
                             passages_embeddings: str, n_docs: int = 5,
                             save_or_load_index: bool = False) -> None:
        """The README demo setup: fp32 encoder and, by default, an exact inner-product index (as
        the original; ``args.index_factory`` chooses another)."""
        self.args.model_name_or_path, self.args.n_docs = model_name_or_path, n_docs
        self.encoder = Encoder.load(model_name_or_path, fp16=False)
        self.index = self._load_or_build_index(passages_embeddings, self.args.index_factory,
                                               save_or_load_index,
                                               self.args.indexing_batch_size)
        self._load_passages(passages)

    def _load_or_build_index(self, embeddings_glob: str, factory: str, save_or_load: bool,
                             chunk_size: int) -> PassageIndex:
        encoder = vars(self.encoder.info)
        folder = Path(self.args.index_dir) if self.args.index_dir else index_folder(
            embeddings_glob, factory)
        on_disk = split_disk_refine(factory)[1] is not None  # lives in its folder, always
        signature = shard_files_signature(embeddings_glob)
        index = None
        if (save_or_load or on_disk) and (folder / "meta.json").is_file():
            logger.info("loading index from %s", folder)
            index = PassageIndex.load(folder, encoder,
                                      search_params=self.args.search_params or None)
            built_from = index.meta.get("shard_files")
            if built_from is not None and built_from != signature:
                logger.warning("the index saved in %s was built from other embedding shards "
                               "than %s now holds: building it afresh", folder, embeddings_glob)
                index = None
        if index is None:
            shards = list(read_shards(embeddings_glob,
                                      allow_pickle=self.args.allow_pickle_embeddings))
            if on_disk:
                index = build_disk_index(shards, folder, factory, encoder, chunk_size=chunk_size,
                                         search_params=self.args.search_params,
                                         record={"shard_files": signature})
                logger.info("built index in %s", folder)
            else:
                index = build_from_shards(shards, factory, encoder, chunk_size=chunk_size,
                                          search_params=self.args.search_params)
                index.meta["shard_files"] = signature
                if save_or_load:
                    index.save(folder)
                    logger.info("saved index to %s", folder)
        if self.args.use_gpu_index:
            index.to_gpu()
        return index

    def _load_passages(self, path: str) -> None:
        self.passages = {p["id"]: p for p in load_passages(path)}

    # ----------------------------------------------------------------- search
    def embed_queries(self, queries: list[str], batch_size: int | None = None,
                      max_length: int | None = None, preprocess: bool = True) -> np.ndarray:
        """Encode queries (lowercased/normalised as the passages were, when ``preprocess``)."""
        self._require_ready()
        if preprocess:
            queries = [prepare_text(q, self.args.lowercase, self.args.normalize_text)
                       for q in queries]
        return self.encoder.encode(queries, batch_size or self.args.per_gpu_batch_size,
                                   max_length or self.args.question_maxlength,
                                   progress=len(queries) > 10_000, desc="queries")

    def search_batch(self, queries: list[str], n_docs: int) -> list[list[dict]]:
        """Top-``n_docs`` passages for each query: dicts with ``id``, ``title``, ``text``, ``score``."""
        if not queries:
            return []
        return self._lookup(*self.index_search(self.embed_queries(queries), n_docs))

    def index_search(self, vectors: np.ndarray, n_docs: int):
        self._require_ready()
        return self.index.search(vectors, n_docs)

    def search_document(self, query: str, top_n: int = 10) -> list[dict]:
        """Search ``args.n_docs`` passages for one query and return the first ``top_n``."""
        return self.search_batch([query], self.args.n_docs)[0][:top_n]

    def search_document_demo(self, query: str, n_docs: int = 10) -> list[dict]:
        """The README demo search: batch 16, max length 200, no preprocessing (as the original)."""
        vectors = self.embed_queries([query], DEMO_QUERY_BATCH, DEMO_QUERY_MAXLENGTH,
                                     preprocess=False)
        return self._lookup(*self.index_search(vectors, n_docs))[0]

    def _lookup(self, scores: np.ndarray, hits: list[list[str]]) -> list[list[dict]]:
        results = []
        for row_scores, row_ids in zip(scores, hits):
            docs = []
            for score, pid in zip(row_scores, row_ids):
                passage = self.passages.get(pid)
                if passage is None:
                    raise SelfRagError(f"passage id {pid!r} is in the index but not in the "
                                       "passage file: embeddings and passages do not match")
                docs.append({"id": pid, "title": passage.get("title", ""),
                             "text": passage["text"], "score": float(score)})
            results.append(docs)
        return results

    def _require_ready(self) -> None:
        if self.encoder is None or self.index is None:
            raise SelfRagError("call setup_retriever() or setup_retriever_demo() first")
