"""The offline demo index: the bundled corpus and its embeddings under the default encoder.

Counterpart of the original's ``download_demo_corpus.sh`` (its README's quick start), which fetched
a 9 GB Wikipedia-intro corpus with precomputed embeddings. Here the corpus is
``eval_data/corpus/corpus.jsonl`` (9,340 real passages, see its SOURCES.md) and its embeddings ship
beside it (``corpus.all-minilm-l6-v2.npy``, fp16, 7 MB, with a JSON record of the corpus digest,
the passage ids in order, the encoder and a digest of its weights). They are used only when all of
that matches what is loaded, and a few passages re-embedded at load agree with them; otherwise the
embeddings and an exact index are built once into ``$SELFRAG_CACHE/demo_index/`` (default
``~/.cache/selfrag``), keyed by the corpus content and the encoder (the build resumes if
interrupted). ``python scripts/build_demo_index.py --ship`` rewrites the shipped file.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from pathlib import Path

import numpy as np

from selfrag.errors import SelfRagError
from selfrag.io import write_json_atomic
from selfrag.locks import file_lock
from selfrag.offline_models import cache_dir
from selfrag.retrieval.embeddings import EmbeddingShard, generate_shard, read_shards
from selfrag.retrieval.encoder import DEFAULT_ENCODER, Encoder, resolve_encoder
from selfrag.retrieval.index import PassageIndex, build_from_shards
from selfrag.retrieval.passages import load_passages, passage_text
from selfrag.retrieval.retriever import Retriever

logger = logging.getLogger(__name__)

DEMO_CORPUS = Path(__file__).resolve().parents[2] / "eval_data" / "corpus" / "corpus.jsonl"
DEMO_BATCH_SIZE = 32
SHIPPED_FORMAT = "selfrag-shipped-embeddings/1"
SPOT_CHECKS = 4           # passages re-embedded at load to confirm the shipped vectors
SPOT_MIN_COSINE = 0.999   # fp16 storage keeps cosine > 0.9999 with the fp32 vectors


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fingerprint(path: Path) -> str:
    return _sha256(path)[:12]


def _slug(encoder_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", encoder_name).strip("-")


def shipped_paths(corpus: str | Path, encoder_name: str) -> tuple[Path, Path]:
    """The shipped ``.npy`` vectors and their ``.json`` record beside ``corpus``."""
    stem = Path(corpus).with_suffix("")
    base = f"{stem}.{_slug(encoder_name).lower()}"
    return Path(base + ".npy"), Path(base + ".json")


def _encoder_weights_digest(encoder_name: str) -> str | None:
    """sha256 over the encoder folder's weight files, or None for a hub id (not checkable)."""
    folder = Path(resolve_encoder(encoder_name))
    files = sorted(folder.glob("*.safetensors")) + sorted(folder.glob("*.bin"))
    if not folder.is_dir() or not files:
        return None
    return hashlib.sha256("".join(_sha256(f) for f in files).encode()).hexdigest()


def ship_vectors(corpus: str | Path | None = None, encoder_name: str = DEFAULT_ENCODER,
                 cache: str | Path | None = None) -> Path:
    """Embed the corpus (reusing the cache's embeddings when done) and write the vectors beside
    it, as fp16 plus the JSON record that :func:`shipped_vectors` checks; return the ``.npy``."""
    corpus = Path(corpus or DEMO_CORPUS)
    weights = _encoder_weights_digest(encoder_name)
    if weights is None:
        raise SelfRagError(f"encoder {encoder_name!r} is not a local folder with weights: "
                           "shipped vectors could never be checked against it")
    passages = load_passages(corpus)
    encoder = Encoder.load(encoder_name, fp16=False)
    shard = _embed(corpus, demo_index_dir(corpus, encoder_name, cache), passages, encoder)
    npy, record = shipped_paths(corpus, encoder_name)
    tmp = npy.with_name(f".{npy.name}.tmp")
    with open(tmp, "wb") as handle:
        np.save(handle, np.asarray(shard.vectors, dtype=np.float16), allow_pickle=False)
    tmp.replace(npy)
    write_json_atomic(record, {
        "format": SHIPPED_FORMAT, "corpus": corpus.name, "corpus_sha256": _sha256(corpus),
        "encoder": vars(encoder.info), "encoder_weights_sha256": weights,
        "dtype": "float16", "count": len(passages), "ids": shard.ids})
    return npy


def _embed(corpus: Path, folder: Path, passages: list[dict], encoder: Encoder) -> EmbeddingShard:
    """The corpus's embeddings in ``folder/embeddings`` (computed unless already there)."""
    generate_shard(passages, encoder, folder / "embeddings", batch_size=DEMO_BATCH_SIZE,
                   checkpoint_every=1024, source=str(corpus))
    (shard,) = read_shards(str(folder / "embeddings" / "passages_*"))
    if shard.ids != [p["id"] for p in passages]:
        raise SelfRagError(f"{folder}: embeddings do not follow {corpus}'s passage order")
    return shard


def shipped_vectors(corpus: Path, passages: list[dict], encoder: Encoder) -> np.ndarray | None:
    """The shipped embeddings of ``corpus`` as float32, or None (with the reason logged) when
    any recorded fact differs: corpus digest, passage ids and order, encoder settings, encoder
    weights, or the vectors of :data:`SPOT_CHECKS` passages re-embedded now."""
    npy, record_path = shipped_paths(corpus, encoder.name)
    if not (npy.is_file() and record_path.is_file()):
        return None

    record = json.loads(record_path.read_text(encoding="utf-8"))
    checks = [
        (record.get("format") == SHIPPED_FORMAT, "format"),
        (record.get("corpus_sha256") == _sha256(corpus), "corpus content"),
        (record.get("ids") == [p["id"] for p in passages], "passage ids"),
        (record.get("encoder") == vars(encoder.info), "encoder settings"),
        (record.get("encoder_weights_sha256") == _encoder_weights_digest(encoder.name),
         "encoder weights"),
    ]
    for ok, what in checks:
        if not ok:
            logger.warning("%s: %s differ from what is loaded; embedding the corpus instead",
                           record_path, what)
            return None
    vectors = np.load(npy, allow_pickle=False).astype(np.float32)
    if vectors.shape != (len(passages), encoder.dim):
        logger.warning("%s: shape %s, expected %s", npy, vectors.shape,
                       (len(passages), encoder.dim))
        return None
    rows = np.linspace(0, len(passages) - 1, SPOT_CHECKS).astype(int)
    fresh = encoder.encode([passage_text(passages[i]) for i in rows], batch_size=SPOT_CHECKS)
    stored = vectors[rows]
    cosine = (fresh * stored).sum(1) / (np.linalg.norm(fresh, axis=1)
                                        * np.linalg.norm(stored, axis=1) + 1e-12)
    if cosine.min() < SPOT_MIN_COSINE:
        logger.warning("%s: re-embedded passages disagree with the shipped vectors (cosine %.4f); "
                       "embedding the corpus instead", npy, float(cosine.min()))
        return None
    return vectors


def demo_index_dir(corpus: str | Path | None = None, encoder_name: str = DEFAULT_ENCODER,
                   cache: str | Path | None = None) -> Path:
    """The cache folder of the demo index for this corpus content and encoder."""
    corpus = Path(corpus or DEMO_CORPUS)
    if not corpus.is_file():
        raise SelfRagError(f"demo corpus {corpus} not found (it ships in eval_data/corpus/)")
    return (Path(cache or cache_dir() / "demo_index")
            / f"{corpus.stem}-{_slug(encoder_name)}-{_fingerprint(corpus)}")


def build_demo_index(corpus: str | Path | None = None, encoder_name: str = DEFAULT_ENCODER,
                     cache: str | Path | None = None, encoder: Encoder | None = None,
                     use_shipped: bool = True) -> Path:
    """Embed the demo corpus and build its exact index, once; return the folder.

    Args:
        corpus: a passage file (default: the bundled ``eval_data/corpus/corpus.jsonl``).
        encoder_name: encoder id or folder (default: the offline MiniLM).
        cache: parent folder (default ``$SELFRAG_CACHE/demo_index``).
        encoder: an already loaded encoder (avoids loading it twice).
        use_shipped: start from the shipped vectors when they pass :func:`shipped_vectors`
            (False: embed the corpus).
    """
    corpus = Path(corpus or DEMO_CORPUS)
    folder = demo_index_dir(corpus, encoder_name, cache)
    if (folder / "index" / "meta.json").is_file():
        return folder
    with file_lock(folder.parent / f".{folder.name}.lock"):  # concurrent demos build it once
        if not (folder / "index" / "meta.json").is_file():
            _build(corpus, folder, encoder_name, encoder, use_shipped)
    return folder


def _build(corpus: Path, folder: Path, encoder_name: str, encoder: Encoder | None,
           use_shipped: bool) -> None:
    logger.info("building the demo index in %s (once)", folder)
    passages = load_passages(corpus)
    encoder = encoder or Encoder.load(encoder_name, fp16=False)
    vectors = shipped_vectors(corpus, passages, encoder) if use_shipped else None
    if vectors is None:
        index = build_from_shards([_embed(corpus, folder, passages, encoder)], "Flat",
                                  vars(encoder.info))
    else:
        index = PassageIndex.create(encoder.dim, "Flat", vars(encoder.info))
        index.add([p["id"] for p in passages], vectors)
    index.save(folder / "index")


def load_demo_retriever(corpus: str | Path | None = None, encoder_name: str = DEFAULT_ENCODER,
                        cache: str | Path | None = None) -> Retriever:
    """A ready :class:`Retriever` over the demo corpus (building the index the first time).

    Example::

        retriever = load_demo_retriever()
        retriever.search_batch(["What is Henry Feilden's occupation?"], n_docs=5)
    """
    corpus = Path(corpus or DEMO_CORPUS)
    encoder = Encoder.load(encoder_name, fp16=False)
    folder = build_demo_index(corpus, encoder_name, cache, encoder=encoder)
    index = PassageIndex.load(folder / "index", vars(encoder.info))
    return Retriever.from_components(encoder, index, load_passages(corpus),
                                     model_name_or_path=encoder_name)
