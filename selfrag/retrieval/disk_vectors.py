"""Passage vectors kept on disk and read back, memory-mapped, to re-rank candidates exactly.

An index too large for RAM at full precision (21M Wikipedia passages × 768 dimensions × 4 bytes
= 64.6 GB for the original's ``IndexFlatIP``) can keep compact codes in RAM to *find* candidates
and score only those candidates against their full vectors, read from a file on disk: the layout
of disk-based approximate search (a RAM-resident compressed index, full vectors on SSD).

Two storages, chosen by the factory suffix ``,DiskRefine(fp16)`` / ``,DiskRefine(int8)``:

- ``fp16``: ``vectors.npy``, float16 ``[n, d]`` (2·d bytes per passage);
- ``int8``: ``vectors.npy``, int8 ``[n, d]``, plus ``scales.npy``, float32 ``[n]`` (d + 4 bytes):
  row ``i`` is stored as ``round(x_i / s_i)`` with ``s_i = max_j |x_ij| / 127``, so every
  coordinate is off by at most ``s_i / 2`` and the inner product by at most
  ``s_i / 2 · ||q||_1``.

Both are plain ``.npy`` files (no pickle), written row block by row block while an index is
built (:class:`VectorWriter`) and memory-mapped, never written, when searched
(:class:`DiskVectors`): only the pages of the rows that are read come into memory, and the
kernel may drop them again.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import torch

from selfrag.errors import InputError, SelfRagError

STORAGES = ("fp16", "int8")
VECTORS_FILE, SCALES_FILE = "vectors.npy", "scales.npy"
_DTYPES = {"fp16": np.float16, "int8": np.int8}
WRITE_BLOCK = 65_536  # rows converted and written at a time


_SUFFIX = re.compile(r",\s*DiskRefine\((?P<storage>[^)]*)\)\s*$")


def split_disk_refine(factory: str) -> tuple[str, str | None]:
    """``"IVF1024,PQ64x4fs,DiskRefine(int8)"`` → ``("IVF1024,PQ64x4fs", "int8")``; a factory
    string without the suffix → ``(factory, None)``."""
    match = _SUFFIX.search(factory)
    if match is None:
        if "DiskRefine" in factory:
            raise SelfRagError(f"{factory!r}: DiskRefine(fp16|int8) must end the factory string, "
                               "after the faiss index that finds the candidates")
        return factory, None
    _check_storage(match["storage"].strip())
    return factory[:match.start()], match["storage"].strip()


def quantize_int8(vectors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rows → (int8 codes, float32 scales) with ``x ≈ codes * scale`` (module docstring)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    scales = np.abs(vectors).max(axis=1) / np.float32(127.0)
    scales[scales == 0] = 1.0  # an all-zero row: any scale reproduces it
    scaled = vectors / scales[:, None]
    np.clip(np.rint(scaled, out=scaled), -127, 127, out=scaled)
    return scaled.astype(np.int8), scales


def row_bytes(storage: str, dim: int) -> int:
    """Bytes on disk per passage (vector row plus, for int8, its scale)."""
    return 2 * dim if storage == "fp16" else dim + 4


def _check_storage(storage: str) -> None:
    if storage not in STORAGES:
        raise SelfRagError(f"unknown on-disk vector storage {storage!r}; use one of {STORAGES}")


class VectorWriter:
    """Writes ``count`` rows into the storage files of ``folder``, one block at a time.

    The files are created at their full size first (sparse until written), so blocks can be
    written in any order and rewritten after a crash; nothing is held in memory but one block.
    """

    def __init__(self, folder: str | os.PathLike, storage: str, count: int, dim: int,
                 resume: bool = False):
        _check_storage(storage)
        self.folder, self.storage, self.count, self.dim = Path(folder), storage, count, dim
        self._files = {VECTORS_FILE: (_DTYPES[storage], (count, dim))}
        if storage == "int8":
            self._files[SCALES_FILE] = (np.float32, (count,))
        self._offsets, self._row_sizes = {}, {}
        for name, (dtype, shape) in self._files.items():
            path = self.folder / name
            header = npy_header(path) if resume and path.is_file() else None
            if header is None or header[:2] != (shape, np.dtype(dtype)):
                np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape)._mmap.close()
                header = npy_header(path)
            self._offsets[name] = header[2]
            self._row_sizes[name] = np.dtype(dtype).itemsize * int(np.prod(shape[1:]))

    def write(self, start: int, vectors: np.ndarray) -> None:
        """Store ``vectors`` as rows ``start .. start + len(vectors)`` (flushed to disk)."""
        if start < 0 or start + len(vectors) > self.count or vectors.shape[1:] != (self.dim,):
            raise SelfRagError(f"rows {start}..{start + len(vectors)} of shape "
                               f"{vectors.shape[1:]} do not fit a [{self.count}, {self.dim}] file")
        handles = {name: open(self.folder / name, "r+b") for name in self._files}
        try:
            for name, handle in handles.items():
                handle.seek(self._offsets[name] + start * self._row_sizes[name])
            for block_start in range(0, len(vectors), WRITE_BLOCK):  # few temporaries at once
                block = np.asarray(vectors[block_start:block_start + WRITE_BLOCK], np.float32)
                if self.storage == "fp16":
                    handles[VECTORS_FILE].write(block.astype(np.float16).tobytes())
                else:
                    codes, scales = quantize_int8(block)
                    handles[VECTORS_FILE].write(codes.tobytes())
                    handles[SCALES_FILE].write(scales.tobytes())
            for handle in handles.values():
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            for handle in handles.values():
                handle.close()


def npy_header(path: str | os.PathLike) -> tuple[tuple, np.dtype, int] | None:
    """A ``.npy`` file's shape, dtype and header length (where its data starts), read without
    mapping the file; ``None`` when it is not a readable ``.npy`` file."""
    try:
        with open(path, "rb") as handle:
            version = np.lib.format.read_magic(handle)
            read = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                    else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read(handle)
            return shape, dtype, handle.tell()
    except (OSError, ValueError):
        return None


class DiskVectors:
    """The stored rows of one index, memory-mapped; :meth:`scores` re-ranks candidates.

    Attributes:
        rows_read: rows fetched from the files since opening (or since it was last reset), the
            measure of the disk traffic of re-ranking (:func:`row_bytes` each).
    """

    def __init__(self, folder: str | os.PathLike, storage: str, count: int, dim: int):
        _check_storage(storage)
        folder = Path(folder)
        self.storage, self.dim, self.rows_read = storage, dim, 0
        # fp16 rows are read by torch, which widens them to float32 far faster than numpy does;
        # it needs a writable array: a copy-on-write mapping, never written
        self.vectors = _open(folder / VECTORS_FILE, _DTYPES[storage], (count, dim),
                             mode="c" if storage == "fp16" else "r")
        self.scales = (_open(folder / SCALES_FILE, np.float32, (count,))
                       if storage == "int8" else None)
        self._fp16 = torch.from_numpy(self.vectors) if storage == "fp16" else None

    def scores(self, queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Inner products ``[q, s]`` of each query with the stored vectors of its ``s`` candidate
        rows (``rows`` ``[q, s]``; a row of -1, no candidate, scores ``-inf``)."""
        found = rows >= 0
        flat = np.where(found, rows, 0).ravel()  # row 0 stands in for a missing candidate
        self.rows_read += int(found.sum())
        if self._fp16 is not None:
            table = self._fp16.index_select(0, torch.from_numpy(flat)).float().numpy()
        else:
            table = self.vectors[flat].astype(np.float32)
        scores = np.matmul(table.reshape(*rows.shape, self.dim), queries[:, :, None])[..., 0]
        if self.scales is not None:
            scores *= self.scales[flat].reshape(rows.shape)
        scores[~found] = -np.inf
        return scores


def _open(path: Path, dtype, shape: tuple, mode: str = "r") -> np.ndarray:
    if not path.is_file():
        raise InputError(path, "on-disk vectors of the index are missing")
    try:
        array = np.load(path, mmap_mode=mode, allow_pickle=False)
    except ValueError as err:
        raise InputError(path, f"not a plain .npy file: {err}") from None
    if array.dtype != np.dtype(dtype) or array.shape != shape:
        raise InputError(path, f"holds {array.dtype} {array.shape}; the index needs "
                         f"{np.dtype(dtype)} {shape}")
    return array


def rerank(disk: DiskVectors, queries: np.ndarray, rows: np.ndarray, k: int,
           batch_size: int = 16) -> tuple[np.ndarray, np.ndarray]:
    """The best ``k`` of each query's candidate ``rows`` by their stored vectors.

    Returns scores ``[q, k]`` (descending; ``-inf`` where fewer than ``k`` candidates) and rows
    ``[q, k]`` (-1 there). Queries go ``batch_size`` at a time: ``batch_size × s`` rows in
    memory at once, few enough to stay in the CPU's cache (16 was fastest here).
    """
    k = min(k, rows.shape[1])
    out_scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
    out_rows = np.full((len(queries), k), -1, dtype=np.int64)
    for start in range(0, len(queries), batch_size):
        end = start + batch_size
        scores = disk.scores(queries[start:end], rows[start:end])
        best = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < scores.shape[1] else \
            np.broadcast_to(np.arange(scores.shape[1]), scores.shape)
        best_scores = np.take_along_axis(scores, best, axis=1)
        order = np.argsort(-best_scores, axis=1, kind="stable")
        out_scores[start:end] = np.take_along_axis(best_scores, order, axis=1)
        chosen = np.take_along_axis(np.take_along_axis(rows[start:end], best, axis=1), order, 1)
        out_rows[start:end] = np.where(np.isfinite(out_scores[start:end]), chosen, -1)
    return out_scores, out_rows
