"""Build a ``DiskRefine`` index in its folder, in bounded memory, resuming after a crash.

The steps (``folder`` is written as ``.{folder}.building`` and renamed when complete):

1. train the faiss candidate index on up to ``train_size`` vectors drawn uniformly from all
   shards, and save it (``index.faiss``, still empty);
2. for each chunk of ``chunk_size`` rows, shard after shard, ``READ_BLOCK`` rows at a time: read
   them, write them to the on-disk vector file
   (:class:`~selfrag.retrieval.disk_vectors.VectorWriter`) and add them to the candidate index;
   then save the index (written to a temporary file, then renamed). The saved index's row count
   is the progress: a rerun after a crash reopens it and continues after its last row;
3. write the ids and ``meta.json``, and move the folder into place.

A rerun with other shards, another factory string, encoder or training settings starts afresh
(``progress.json`` records them). Memory: one training sample, then the candidate index's codes
plus one block of rows; :func:`memory_bound` says how much, and the build logs it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
from pathlib import Path

import faiss
from tqdm.auto import tqdm

from selfrag.errors import SelfRagError
from selfrag.io import write_json_atomic
from selfrag.retrieval.disk_vectors import VectorWriter, row_bytes, split_disk_refine
from selfrag.retrieval.embeddings import EmbeddingShard
from selfrag.retrieval.index import (
    DEFAULT_TRAIN_SIZE, INDEX_FILE, IdMap, PassageIndex, canonical_int, replace_folder,
    shard_rows, trained_index)

logger = logging.getLogger(__name__)

PROGRESS_FILE = "progress.json"
READ_BLOCK = 32_768  # rows read, written and added at a time (a checkpoint every chunk_size)
FIXED_BYTES = 64 * 2 ** 20  # memory_bound's allowance for work buffers of any build


def memory_bound(count: int, dim: int, code_bytes: int, train_size: int,
                 ids: list[list[str]]) -> dict:
    """Bytes the build may hold at once beyond what the process had before it.

    - training: the float32 sample, and as much again for faiss's own copies (k-means);
    - adding: the candidate index (codes + 8-byte list ids per row) and its serialized copy at a
      checkpoint, one float32 block of ``READ_BLOCK`` rows read from a shard and three
      block-sized buffers (its storage form, faiss's encoding);
    - throughout: ``ids``, the passage ids of the shards as Python strings, and three arrays of
      them (int64 for decimal ids, else fixed-width strings): the uniqueness check's, then the
      id map and its copy while it grows; and ``FIXED_BYTES`` whatever the size (faiss's and
      OpenMP's work buffers, allocator arenas: 20 MB measured for a 3,000-vector build).
    """
    train = 2 * min(train_size, count) * dim * 4
    adding = 2 * count * (code_bytes + 8) + 4 * min(READ_BLOCK, count) * dim * 4
    strings = sum(sys.getsizeof(i) + 8 for shard in ids for i in shard)
    width = 8 if all(canonical_int(i) for shard in ids for i in shard) else \
        4 * max((len(i) for shard in ids for i in shard), default=1)
    id_bytes = strings + 3 * width * count
    return {"train": train, "add": adding, "ids": id_bytes,
            "total": max(train, adding) + id_bytes + FIXED_BYTES}


def _fingerprint(shards: list[EmbeddingShard], factory: str, encoder: dict | None,
                 train_size: int, seed: int, mips_transform: bool) -> dict:
    files = [[s.path.name, len(s.ids), s.path.stat().st_size, s.path.stat().st_mtime_ns]
             for s in shards]
    return {"shards": files, "factory": factory, "encoder": encoder or {},
            "train_size": train_size, "seed": seed, "mips_transform": mips_transform}


def build_disk_index(shards: list[EmbeddingShard], folder: str | os.PathLike, factory: str,
                     encoder: dict | None = None, chunk_size: int = 1_000_000,
                     train_size: int = DEFAULT_TRAIN_SIZE, search_params: str = "",
                     seed: int = 0, mips_transform: bool = False,
                     record: dict | None = None) -> PassageIndex:
    """Build the ``DiskRefine`` index ``factory`` over ``shards`` into ``folder`` and load it.

    Args: as :func:`selfrag.retrieval.index.build_from_shards`; ``chunk_size`` rows are added,
        written and checkpointed at a time; ``record``: more entries for ``meta.json``.

    Raises:
        SelfRagError: ``factory`` has no ``DiskRefine(...)`` suffix, or no shards.
        InputError: as ``build_from_shards``.
    """
    shards = list(shards)
    storage = split_disk_refine(factory)[1]
    if storage is None:
        raise SelfRagError(f"{factory!r} is not a DiskRefine factory string "
                           "(e.g. 'IVF1024,PQ64x4fs,DiskRefine(int8)')")
    if not shards:
        raise SelfRagError("no embedding shards to index")
    folder = Path(folder)
    work = folder.with_name(f".{folder.name}.building")
    count, dim = sum(len(s.ids) for s in shards), shards[0].vectors.shape[1]
    untrained = PassageIndex.create(dim, factory, mips_max_norm=1.0 if mips_transform else None)
    bound = memory_bound(count, dim, code_bytes(untrained.index), train_size,
                         [s.ids for s in shards])
    logger.info("building %s over %d vectors in %s: memory bound %.1f MB (training %.1f MB, "
                "adding %.1f MB, ids %.1f MB); on disk %.1f MB of vectors", factory, count,
                folder, bound["total"] / 1e6, bound["train"] / 1e6, bound["add"] / 1e6,
                bound["ids"] / 1e6, count * row_bytes(storage, dim) / 1e6)
    fingerprint = _fingerprint(shards, factory, encoder, train_size, seed, mips_transform)
    index = _resume(work, fingerprint)
    if index is None:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        index = trained_index(shards, factory, encoder, chunk_size, train_size, search_params,
                              seed, mips_transform)
        _checkpoint(index, work)
        write_json_atomic(work / PROGRESS_FILE, {"fingerprint": fingerprint, "meta": index.meta},
                          indent=1)
    writer = VectorWriter(work, storage, count, dim, resume=True)
    done = len(index)
    if done:
        logger.info("resuming the build of %s after %d of %d vectors", folder, done, count)
    bar = tqdm(total=count, initial=done, desc="indexing", unit="vec")
    offset = 0
    for shard in shards:
        for start in range(0, len(shard.ids), chunk_size):
            end = min(start + chunk_size, len(shard.ids))
            first = min(max(start, done - offset), end)  # rows before it were added already
            index.ids.extend(shard.ids[start:first])
            if first == end:
                continue
            for block in range(first, end, READ_BLOCK):  # memory: one READ_BLOCK of rows
                block_end = min(block + READ_BLOCK, end)
                vectors = shard_rows(shard, block, block_end)
                writer.write(offset + block, vectors)
                index.add(shard.ids[block:block_end], vectors, READ_BLOCK)
                del vectors
            _checkpoint(index, work)
            bar.update(end - first)
        offset += len(shard.ids)
    bar.close()
    index.meta.update(record or {})
    index.write_files(work)
    (work / PROGRESS_FILE).unlink()
    replace_folder(work, folder)
    return PassageIndex.load(folder, encoder)


def code_bytes(index: faiss.Index) -> int:
    """Bytes per vector that the candidate index keeps in RAM, besides its 8-byte ids."""
    try:
        return int(faiss.extract_index_ivf(index).code_size)
    except RuntimeError:  # not an IVF index
        return int(getattr(faiss.downcast_index(index), "code_size", index.d * 4))


def _checkpoint(index: PassageIndex, work: Path) -> None:
    """Save the candidate index (its row count is the build's progress), atomically."""
    tmp = work / f".{INDEX_FILE}.tmp"
    faiss.write_index(index.index, str(tmp))
    os.replace(tmp, work / INDEX_FILE)


def _resume(work: Path, fingerprint: dict) -> PassageIndex | None:
    """The candidate index of an interrupted build with the same fingerprint, or None."""
    progress = work / PROGRESS_FILE
    if not progress.is_file() or not (work / INDEX_FILE).is_file():
        return None
    try:
        saved = json.loads(progress.read_text())
    except json.JSONDecodeError:
        saved = {}
    if saved.get("fingerprint") != json.loads(json.dumps(fingerprint)):
        logger.warning("%s holds a build of other shards or settings: starting afresh", work)
        return None
    try:
        faiss_index = faiss.read_index(str(work / INDEX_FILE))
    except RuntimeError:  # cannot happen after an atomic checkpoint, but a disk can fail
        logger.warning("%s: unreadable checkpoint: starting afresh", work / INDEX_FILE)
        return None
    index = PassageIndex(faiss_index, IdMap(), saved["meta"])
    index.set_search_params(saved["meta"].get("search_params", ""))
    return index
