"""Passage embeddings on disk: one ``.npy`` matrix plus one ``.json`` sidecar per shard.

A shard ``{prefix}_{shard_id:02d}`` is written as ``{name}.npy`` (float32 ``[n, dim]``) and then
``{name}.json`` (ids, encoder and text settings, shard bounds); the sidecar is the completion
marker, so a shard without it is unfinished. Work inside a shard is saved in blocks under
``.{name}.partial/`` (each block written atomically) so an interrupted run resumes where it stopped.

The original wrote each shard as a pickle of ``(ids, array)``; such files are read
only when the caller opts in (``allow_pickle=True``), since unpickling runs arbitrary code.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
import os
import pickle
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from selfrag.errors import InputError, SelfRagError
from selfrag.io import atomic_open, set_usual_mode, write_json_atomic
from selfrag.locks import file_lock
from selfrag.retrieval.encoder import Encoder
from selfrag.retrieval.passages import Passage, passage_text

logger = logging.getLogger(__name__)

FORMAT = "selfrag-embeddings/1"


def shard_bounds(num_passages: int, shard_id: int, num_shards: int) -> tuple[int, int]:
    """Rows ``[start, end)`` of shard ``shard_id`` of ``num_shards``, split as the original did.

    Each shard takes ``floor(N / n)`` consecutive passages; the last one also takes the rest.
    """
    if num_shards < 1 or not 0 <= shard_id < num_shards:
        raise SelfRagError(f"shard_id must be in [0, num_shards); got shard_id={shard_id}, "
                           f"num_shards={num_shards}")
    size = num_passages // num_shards
    start = shard_id * size
    end = num_passages if shard_id == num_shards - 1 else start + size
    return start, end


def passages_digest(passages: list[Passage]) -> str:
    """SHA-256 of the passages' ids, titles and texts, in order: what a shard's vectors encode."""
    digest = hashlib.sha256()
    for p in passages:
        digest.update(json.dumps([p["id"], p.get("title") or "", p["text"]],
                                 ensure_ascii=False).encode() + b"\n")
    return digest.hexdigest()


def check_shard(num_passages: int, shard_id: int, num_shards: int) -> tuple[int, int]:
    """:func:`shard_bounds`, refusing a shard that would hold no passage (an empty output)."""
    start, end = shard_bounds(num_passages, shard_id, num_shards)
    if start == end:
        raise SelfRagError(f"shard {shard_id} of {num_shards} would be empty: the corpus has "
                           f"{num_passages} passages (use fewer --num_shards)")
    return start, end


def shard_name(prefix: str, shard_id: int) -> str:
    return f"{prefix}_{shard_id:02d}"


@dataclass
class EmbeddingShard:
    """One shard read back: ids, vectors (memory-mapped for ``.npy``) and its settings."""

    path: Path
    ids: list[str]
    vectors: np.ndarray
    meta: dict = field(default_factory=dict)


def _save_npy_atomic(path: Path, array: np.ndarray) -> None:
    with atomic_open(path, "wb") as handle:
        np.save(handle, array, allow_pickle=False)


def generate_shard(passages: list[Passage], encoder: Encoder, output_dir: str | os.PathLike,
                   prefix: str = "passages", shard_id: int = 0, num_shards: int = 1,
                   batch_size: int = 512, max_length: int = 512, use_title: bool = True,
                   lowercase: bool = False, normalize: bool = False,
                   checkpoint_every: int = 50_000, source: str = "") -> Path:
    """Embed one shard of ``passages`` and write it; skip it if it is already complete.

    Args:
        passages: the whole corpus (the shard is sliced with :func:`shard_bounds`).
        encoder: the passage encoder.
        output_dir: folder of the shard files.
        prefix, shard_id, num_shards: the shard's name and slice.
        batch_size, max_length: encoder batch size and truncation length.
        use_title, lowercase, normalize: how passage text is built (:func:`passage_text`).
        checkpoint_every: passages per saved block inside the shard (the resume granularity).
        source: the corpus path, recorded in the sidecar.

    Returns:
        The path of the shard's ``.npy`` file.

    Raises:
        SelfRagError: an empty shard, or a finished shard exists with different settings.
    """
    check_shard(len(passages), shard_id, num_shards)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    name = shard_name(prefix, shard_id)
    with file_lock(output_dir / f".{name}.lock"):  # a second run of this shard waits, then skips
        # (the lock file is removed when the shard is done)
        return _generate_shard_locked(
            passages, encoder, output_dir, name, shard_id, num_shards, batch_size, max_length,
            use_title, lowercase, normalize, checkpoint_every, source)


def _generate_shard_locked(passages, encoder, output_dir: Path, name: str, shard_id: int,
                           num_shards: int, batch_size: int, max_length: int, use_title: bool,
                           lowercase: bool, normalize: bool, checkpoint_every: int,
                           source: str) -> Path:
    npy, sidecar = output_dir / f"{name}.npy", output_dir / f"{name}.json"
    start, end = shard_bounds(len(passages), shard_id, num_shards)
    settings = {
        "encoder": {"name": encoder.name, "dim": encoder.dim, "pooling": encoder.pooling,
                    "normalize": encoder.normalize},
        "use_title": use_title, "lowercase": lowercase, "normalize_text": normalize,
        "max_length": max_length, "shard_id": shard_id, "num_shards": num_shards,
        "start": start, "end": end, "num_passages": len(passages), "source": str(source),
        "passages_sha256": passages_digest(passages[start:end]),  # an edited corpus differs
    }
    if sidecar.is_file() and npy.is_file():
        done = json.loads(sidecar.read_text())
        compared = [k for k in settings if k != "source"
                    and (k != "passages_sha256" or k in done)]  # shards from before it was kept
        if {k: done.get(k) for k in compared} != {k: settings[k] for k in compared}:
            raise SelfRagError(f"{sidecar}: a finished shard with different settings exists; "
                               "remove it or choose another --output_dir/--prefix")
        logger.info("shard %s already done, skipping", name)
        return npy

    partial = output_dir / f".{name}.partial"
    partial.mkdir(exist_ok=True)
    settings_file = partial / "settings.json"
    if settings_file.is_file() and json.loads(settings_file.read_text()) != settings:
        logger.warning("discarding partial work in %s (settings changed)", partial)
        shutil.rmtree(partial)
        partial.mkdir()
    write_json_atomic(settings_file, settings)

    blocks = [(b, min(b + checkpoint_every, end)) for b in range(start, end, checkpoint_every)]
    bar = tqdm(total=end - start, desc=f"embedding {name}", unit="psg")
    for b_start, b_end in blocks:
        block = partial / f"block_{b_start:010d}_{b_end:010d}.npy"
        if not block.is_file():
            texts = [passage_text(p, use_title, lowercase, normalize)
                     for p in passages[b_start:b_end]]
            _save_npy_atomic(block, encoder.encode(texts, batch_size, max_length,
                                                   on_batch=bar.update))
        else:
            bar.update(b_end - b_start)
    bar.close()

    # Assemble the blocks into the final matrix without holding them all twice in memory.
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".npy", dir=output_dir)
    os.close(fd)
    set_usual_mode(tmp)  # mkstemp's file is owner-only
    try:
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32,
                                        shape=(end - start, encoder.dim))
        for b_start, b_end in blocks:
            out[b_start - start:b_end - start] = np.load(
                partial / f"block_{b_start:010d}_{b_end:010d}.npy")
        out.flush()
        del out
        os.replace(tmp, npy)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    ids = [p["id"] for p in passages[start:end]]
    write_json_atomic(sidecar, {"format": FORMAT, **settings, "count": len(ids), "ids": ids})
    shutil.rmtree(partial, ignore_errors=True)
    return npy


def shard_files_signature(pattern: str) -> list[list]:
    """Name, size and modification time of every file the glob matches (hidden ones aside): a
    saved index records it, so one built from other (regenerated) shards is not reused."""
    files = [Path(m) for m in sorted(glob.glob(pattern))]
    return [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files
            if f.is_file() and not f.name.startswith(".")]


def _shard_bases(pattern: str) -> list[tuple[Path, str]]:
    """Group the files matched by ``pattern`` into shards: ``(base path, kind)`` sorted by name."""
    bases: dict[Path, str] = {}
    for match in sorted(glob.glob(pattern)):
        path = Path(match)
        if path.name.startswith(".") or path.is_dir():
            continue
        if path.suffix in (".npy", ".json"):
            bases[path.with_suffix("")] = "npy"
        elif path.suffix in ("", ".pkl", ".pickle"):
            bases[path] = "pickle"
    return sorted(bases.items())


def read_shards(pattern: str, allow_pickle: bool = False) -> Iterator[EmbeddingShard]:
    """Yield the embedding shards matched by a glob, in sorted order, as the original loaded them.

    Args:
        pattern: a glob such as ``"wikipedia_embeddings/passages_*"``.
        allow_pickle: also read the original's pickle shards (runs ``pickle.load``; only for
            files you trust).

    Raises:
        SelfRagError: nothing matched, or a pickle shard without ``allow_pickle``.
        InputError: an unfinished shard, ids/vectors count mismatch, a dimension differing from
            the first shard, shards missing from a sharded set, or a malformed pickle.
    """
    bases = _shard_bases(pattern)
    if not bases:
        raise SelfRagError(f"no embedding shards match {pattern!r}")
    _check_complete_set(bases)
    dim = None
    for base, kind in bases:
        shard = _read_pickle(base, allow_pickle) if kind == "pickle" else _read_npy(base)
        if dim is None:
            dim = shard.vectors.shape[1]
        elif shard.vectors.shape[1] != dim:
            raise InputError(shard.path, f"embedding dimension {shard.vectors.shape[1]} differs "
                             f"from {dim} in the first shard", field="dim")
        yield shard


def _check_complete_set(bases: list[tuple[Path, str]]) -> None:
    """Every shard of a set written by :func:`generate_shard` must be present."""
    sets: dict[tuple[Path, int], set[int]] = {}
    for base, kind in bases:
        sidecar = base.with_suffix(".json")
        if kind != "npy" or not sidecar.is_file():
            continue
        try:
            meta = json.loads(sidecar.read_text())
        except json.JSONDecodeError as err:
            raise InputError(sidecar, f"malformed JSON: {err.msg}", line=err.lineno) from None
        prefix = base.name.rsplit("_", 1)[0]
        sets.setdefault((base.parent / prefix, int(meta.get("num_shards", 1))), set()).add(
            int(meta.get("shard_id", 0)))
    for (prefix, num_shards), found in sets.items():
        missing = sorted(set(range(num_shards)) - found)
        if missing:
            names = ", ".join(shard_name(prefix.name, s) for s in missing)
            raise InputError(prefix.parent, f"embedding set {prefix.name!r} has {num_shards} "
                             f"shards but these are missing or unfinished: {names}")


def _read_npy(base: Path) -> EmbeddingShard:
    npy, sidecar = base.with_suffix(".npy"), base.with_suffix(".json")
    if not npy.is_file() or not sidecar.is_file():
        missing = npy if not npy.is_file() else sidecar
        raise InputError(missing, "shard is unfinished or incomplete (file missing); "
                         "rerun generate_passage_embeddings.py to finish it")
    try:
        meta = json.loads(sidecar.read_text())
    except json.JSONDecodeError as err:
        raise InputError(sidecar, f"malformed JSON: {err.msg}", line=err.lineno) from None
    ids = meta.get("ids")
    if not isinstance(ids, list):
        raise InputError(sidecar, "missing list of passage ids", field="ids")
    try:
        vectors = np.load(npy, mmap_mode="r", allow_pickle=False)
    except ValueError as err:
        raise InputError(npy, f"not a plain .npy matrix: {err}") from None
    if vectors.ndim != 2:
        raise InputError(npy, f"expected a 2-d matrix, found shape {vectors.shape}")
    if len(ids) != vectors.shape[0]:
        raise InputError(sidecar, f"{len(ids)} ids but {vectors.shape[0]} embedding rows in "
                         f"{npy.name}", field="ids")
    return EmbeddingShard(npy, [str(i) for i in ids], vectors, meta)


def _read_pickle(path: Path, allow_pickle: bool) -> EmbeddingShard:
    if not allow_pickle:
        raise SelfRagError(f"{path}: looks like an original pickle embedding shard; loading it "
                           "runs pickle.load, so pass --allow_pickle_embeddings (or "
                           "allow_pickle=True) if you trust the file")
    with path.open("rb") as handle:
        try:
            data = pickle.load(handle)
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError,
                TypeError, ValueError) as err:
            raise InputError(path, f"cannot unpickle embedding shard: {err}") from None
    if not (isinstance(data, tuple) and len(data) == 2):
        raise InputError(path, "expected a pickled tuple (ids, embeddings)")
    ids, vectors = data
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise InputError(path, f"expected a 2-d embedding array, found shape {vectors.shape}")
    if len(ids) != vectors.shape[0]:
        raise InputError(path, f"{len(ids)} ids but {vectors.shape[0]} embedding rows",
                         field="ids")
    return EmbeddingShard(path, [str(i) for i in ids], vectors, {})
