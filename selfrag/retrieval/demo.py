"""The offline demo index: the bundled corpus, embedded once with the default encoder.

Counterpart of the original's ``download_demo_corpus.sh`` (spec §8.8), which fetched a 9 GB
Wikipedia-intro corpus with precomputed embeddings. Here the corpus is
``eval_data/corpus/corpus.jsonl`` (9,340 real passages, see its SOURCES.md) and the embeddings and
an exact index are built on first use into ``$SELFRAG_CACHE/demo_index/`` (default
``~/.cache/selfrag``), keyed by the corpus content and the encoder, so a changed corpus is rebuilt.
The build resumes if interrupted.
"""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

from selfrag.errors import SelfRagError
from selfrag.locks import file_lock
from selfrag.models import cache_dir
from selfrag.retrieval.embeddings import generate_shard, read_shards
from selfrag.retrieval.encoder import DEFAULT_ENCODER, Encoder
from selfrag.retrieval.index import PassageIndex, build_from_shards
from selfrag.retrieval.passages import load_passages
from selfrag.retrieval.retriever import Retriever

logger = logging.getLogger(__name__)

DEMO_CORPUS = Path(__file__).resolve().parents[2] / "eval_data" / "corpus" / "corpus.jsonl"
DEMO_BATCH_SIZE = 32


def _fingerprint(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]


def demo_index_dir(corpus: str | Path | None = None, encoder_name: str = DEFAULT_ENCODER,
                   cache: str | Path | None = None) -> Path:
    """The cache folder of the demo index for this corpus content and encoder."""
    corpus = Path(corpus or DEMO_CORPUS)
    if not corpus.is_file():
        raise SelfRagError(f"demo corpus {corpus} not found (it ships in eval_data/corpus/)")
    slug = re.sub(r"[^A-Za-z0-9]+", "-", encoder_name).strip("-")
    return Path(cache or cache_dir() / "demo_index") / f"{corpus.stem}-{slug}-{_fingerprint(corpus)}"


def build_demo_index(corpus: str | Path | None = None, encoder_name: str = DEFAULT_ENCODER,
                     cache: str | Path | None = None, encoder: Encoder | None = None) -> Path:
    """Embed the demo corpus and build its exact index, once; return the folder.

    Args:
        corpus: a passage file (default: the bundled ``eval_data/corpus/corpus.jsonl``).
        encoder_name: encoder id or folder (default: the offline MiniLM).
        cache: parent folder (default ``$SELFRAG_CACHE/demo_index``).
        encoder: an already loaded encoder (avoids loading it twice).
    """
    corpus = Path(corpus or DEMO_CORPUS)
    folder = demo_index_dir(corpus, encoder_name, cache)
    if (folder / "index" / "meta.json").is_file():
        return folder
    with file_lock(folder.parent / f".{folder.name}.lock"):  # concurrent demos build it once
        if not (folder / "index" / "meta.json").is_file():
            _build(corpus, folder, encoder_name, encoder)
    return folder


def _build(corpus: Path, folder: Path, encoder_name: str, encoder: Encoder | None) -> None:
    logger.info("building the demo index in %s (once)", folder)
    passages = load_passages(corpus)
    encoder = encoder or Encoder.load(encoder_name, fp16=False)
    generate_shard(passages, encoder, folder / "embeddings", batch_size=DEMO_BATCH_SIZE,
                   checkpoint_every=1024, source=str(corpus))
    index = build_from_shards(read_shards(str(folder / "embeddings" / "passages_*")), "Flat",
                              vars(encoder.info))
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
