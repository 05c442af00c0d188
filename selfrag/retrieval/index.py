"""A faiss index over passage vectors, with its ids and the settings it must be queried with.

Any ``faiss.index_factory`` string works; passages are always ranked by inner product (as the
original ``src/index.Indexer``, which searches unnormalised mean-pooled vectors by inner product):

- ``"Flat"``: exact search (the original's ``IndexFlatIP``); 4·d bytes per vector.
- ``"PQ{m}x{bits}"``: the original's ``--n_subquantizers`` option (``IndexPQ``).
- ``"IVF{nlist},PQ{m}"``, ``"OPQ{m}_{d'},IVF{nlist},PQ{m}x4fsr,Refine(PQ{m2})"``,
  ``"HNSW32"``…: compressed or graph indexes, trained on a sample of the vectors.

With ``mips_max_norm=M`` (:meth:`PassageIndex.create`, ``build_from_shards(mips_transform=True)``)
the inner-product search is reduced to an L2 search, so that IVF cells and PQ codes, which
partition space by L2 distance, fit it: every passage vector x gets one extra coordinate
``sqrt(M² - ||x||²)`` (all of them then have norm M), every query q gets 0, and
``||q' - x'||² = ||q||² + M² - 2·q·x`` ranks passages exactly as ``q·x`` does. The faiss index is
then an L2 index of dimension d+1; :meth:`PassageIndex.search` takes and returns d-dimensional
vectors and inner-product scores. ``meta.json`` records ``mips_transform: true`` and
``mips_max_norm``; a vector longer than M cannot be added (it would be ranked wrongly).
Measure before using it (``scripts/bench_retrieval.py``, configurations ``*_mips``): it helps when
a few long vectors dominate the inner-product top-k, but when norms vary only moderately (as for
Contriever) the extra coordinate, up to M in size, dominates the k-means cells and recall drops
(1M synthetic 768-d vectors, ``IVF1024,Flat``, recall@20 at nprobe=32: 0.97 without,
0.88 with the transform).

With the suffix ``,DiskRefine(fp16)`` or ``,DiskRefine(int8)`` (e.g.
``"IVF1024,PQ64x4fs,DiskRefine(int8)"``) only the faiss part before it is held in RAM: it finds a
shortlist of ``shortlist`` candidates per query (search parameter ``shortlist=N``, default
``DEFAULT_SHORTLIST``; an IVF part probes ``DEFAULT_NPROBE`` lists unless told otherwise), which
are re-ranked by their exact inner products with the full vectors,
read memory-mapped from disk (:mod:`selfrag.retrieval.disk_vectors`). Such an index is built in
its folder by :func:`selfrag.retrieval.disk_build.build_disk_index` (bounded memory, resumable)
and cannot be built in memory.

Saved as a folder: ``index.faiss`` (``faiss.write_index``), ``ids.npy`` (int64, when every id is
a plain decimal number) or ``ids.json``, and ``meta.json`` (encoder name/dimension/pooling/
normalisation, factory string, search parameters, count). No pickle. ``meta.json`` is checked at
load so an index cannot silently be queried with another encoder.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import faiss
import numpy as np
from tqdm.auto import tqdm

from selfrag.errors import InputError, SelfRagError
from selfrag.io import set_usual_mode, write_json_atomic
from selfrag.retrieval.disk_vectors import (
    STORAGES,
    DiskVectors,
    npy_header,
    rerank,
    split_disk_refine,
)
from selfrag.retrieval.embeddings import EmbeddingShard

logger = logging.getLogger(__name__)

FORMAT = "selfrag-index/1"
INDEX_FILE, META_FILE = "index.faiss", "meta.json"
DEFAULT_TRAIN_SIZE = 262_144
# DiskRefine defaults, measured with scripts/bench_retrieval.py (1M vectors, IVF1024,PQ64x4fs):
# candidates re-ranked per query, and IVF lists probed when the search parameters give none
DEFAULT_SHORTLIST, DEFAULT_NPROBE = 256, 32


class IdMap:
    """Row number → passage id; an int64 array when all ids are canonical decimals (DPR)."""

    def __init__(self, ids: Sequence[str] = ()):
        self._ints: np.ndarray | None = np.empty(0, dtype=np.int64)
        self._strs: list[str] = []
        self.extend(ids)

    def extend(self, ids: Sequence[str]) -> None:
        ids = [str(i) for i in ids]
        if self._ints is not None and all(canonical_int(i) for i in ids):
            self._ints = np.concatenate([self._ints, np.asarray(ids, dtype=np.int64)])
            return
        if self._ints is not None:  # switch to strings for good
            self._strs = [str(i) for i in self._ints.tolist()]
            self._ints = None
        self._strs.extend(ids)

    def __len__(self) -> int:
        return len(self._ints) if self._ints is not None else len(self._strs)

    def __getitem__(self, row: int) -> str:
        return str(self._ints[row]) if self._ints is not None else self._strs[row]

    def save(self, folder: Path) -> str:
        if self._ints is not None:
            with open(folder / "ids.npy", "wb") as handle:
                np.save(handle, self._ints, allow_pickle=False)
            return "ids.npy"
        (folder / "ids.json").write_text(json.dumps(self._strs, ensure_ascii=False))
        return "ids.json"

    @classmethod
    def load(cls, path: Path, mmap: bool = False) -> IdMap:
        """Read ``ids.npy`` (memory-mapped with ``mmap``: only the rows looked up are read) or
        ``ids.json``."""
        ids = cls()
        if path.suffix == ".npy":
            ids._ints = np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
            if ids._ints.dtype != np.int64:
                ids._ints = ids._ints.astype(np.int64)
        else:
            ids._ints, ids._strs = None, [str(i) for i in json.loads(path.read_text())]
        return ids


def mips_database(vectors: np.ndarray, max_norm: float) -> np.ndarray:
    """Passage vectors [n, d] → [n, d+1] of norm ``max_norm`` (MIPS → L2 reduction).

    Raises:
        SelfRagError: a vector is longer than ``max_norm``.
    """
    vectors = np.asarray(vectors, dtype=np.float32)
    sq = np.einsum("ij,ij->i", vectors, vectors, dtype=np.float64)
    if len(sq) and sq.max() > max_norm ** 2 * (1 + 1e-6):
        raise SelfRagError(f"a vector has norm {np.sqrt(sq.max()):.6g} > mips_max_norm "
                           f"{max_norm:.6g}; rebuild the index with a larger maximum norm")
    extra = np.sqrt(np.maximum(max_norm ** 2 - sq, 0.0)).astype(np.float32)
    return np.ascontiguousarray(np.hstack([vectors, extra[:, None]]))


def mips_queries(queries: np.ndarray) -> np.ndarray:
    """Query vectors [q, d] → [q, d+1] with a 0 appended (MIPS → L2 reduction)."""
    queries = np.asarray(queries, dtype=np.float32)
    return np.ascontiguousarray(np.hstack([queries, np.zeros((len(queries), 1), np.float32)]))


def max_norm(vectors: np.ndarray, chunk_size: int = 1_000_000) -> float:
    """The largest L2 norm among the rows of ``vectors`` (read in chunks: memmaps welcome)."""
    best = 0.0
    for start in range(0, len(vectors), chunk_size):
        chunk = np.asarray(vectors[start:start + chunk_size], dtype=np.float32)
        if len(chunk):
            best = max(best, float(np.einsum("ij,ij->i", chunk, chunk,
                                             dtype=np.float64).max()))
    return float(np.sqrt(best))


def canonical_int(text: str) -> bool:
    """Whether a passage id is a plain decimal that int64 holds and gives back unchanged."""
    return text.isdigit() and text.isascii() and (text == "0" or text[0] != "0") and len(text) < 19


class PassageIndex:
    """faiss index + :class:`IdMap` + metadata, searched in batches.

    Args:
        index: a faiss index (inner-product metric; L2 over d+1 dimensions with the MIPS
            transform).
        ids: row → passage id.
        meta: ``encoder`` ({name, dim, pooling, normalize}), ``factory``, ``search_params``,
            ``mips_transform`` / ``mips_max_norm`` when the transform is used, and
            ``disk_refine`` (``{storage, shortlist}``) for a ``DiskRefine`` index.
        disk: the on-disk vectors that re-rank the candidates of a ``DiskRefine`` index.
    """

    def __init__(self, index: faiss.Index, ids: IdMap, meta: dict,
                 disk: DiskVectors | None = None):
        self.index, self.ids, self.meta, self.disk = index, ids, meta, disk

    @classmethod
    def create(cls, dim: int, factory: str = "Flat", encoder: dict | None = None,
               search_params: str = "", mips_max_norm: float | None = None) -> PassageIndex:
        """An empty index from a factory string, untrained if it needs training.

        Without ``mips_max_norm``: a ``dim``-d inner-product index. With it: the MIPS → L2
        transform (module docstring), i.e. an L2 index over ``dim + 1`` dimensions that accepts
        passage vectors of norm up to ``mips_max_norm``. With a ``DiskRefine`` suffix, the
        faiss part alone; :func:`selfrag.retrieval.disk_build.build_disk_index` attaches the
        vectors on disk.
        """
        faiss_factory, storage = split_disk_refine(factory)
        if mips_max_norm is not None and not (np.isfinite(mips_max_norm) and mips_max_norm > 0):
            raise SelfRagError(f"mips_max_norm must be a positive number, not {mips_max_norm!r}")
        mips = mips_max_norm is not None
        try:
            index = faiss.index_factory(dim + 1 if mips else dim, faiss_factory,
                                        faiss.METRIC_L2 if mips else faiss.METRIC_INNER_PRODUCT)
        except RuntimeError as err:
            raise SelfRagError(f"faiss cannot build index {factory!r}: "
                               f"{str(err).strip().splitlines()[-1]}") from None
        meta = {"format": FORMAT, "encoder": encoder or {}, "dim": dim, "factory": factory,
                "metric": "inner_product", "search_params": search_params}
        if mips:
            meta.update(mips_transform=True, mips_max_norm=float(mips_max_norm))
        if storage:
            meta["disk_refine"] = {"storage": storage, "shortlist": DEFAULT_SHORTLIST}
            if not search_params and "IVF" in faiss_factory:
                search_params = f"nprobe={DEFAULT_NPROBE}"
        index = cls(index, IdMap(), meta)
        index.set_search_params(search_params)
        return index

    @property
    def mips(self) -> bool:
        """Whether the MIPS → L2 transform is applied at add and search."""
        return bool(self.meta.get("mips_transform"))

    @property
    def dim(self) -> int:
        """Dimension of the passage and query vectors (the faiss index has one more with MIPS)."""
        return int(self.index.d) - (1 if self.mips else 0)

    def _database(self, vectors: np.ndarray) -> np.ndarray:
        if self.mips:
            return mips_database(vectors, self.meta["mips_max_norm"])
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def train(self, vectors: np.ndarray) -> None:
        """Train quantizers (IVF/PQ/OPQ) on a sample; a no-op for ``Flat``."""
        if not self.index.is_trained:
            logger.info("training %s on %d vectors", self.meta["factory"], len(vectors))
            self.index.train(self._database(vectors))

    def add(self, ids: Sequence[str], vectors: np.ndarray, chunk_size: int = 1_000_000) -> None:
        """Append vectors (in chunks of ``chunk_size`` rows) with their passage ids."""
        if len(ids) != len(vectors):
            raise SelfRagError(f"{len(ids)} ids for {len(vectors)} vectors")
        if vectors.shape[1] != self.dim:
            raise SelfRagError(f"vectors have dimension {vectors.shape[1]}, index has {self.dim}")
        if not self.index.is_trained:
            raise SelfRagError(f"index {self.meta['factory']!r} must be trained before adding")
        for start in range(0, len(vectors), chunk_size):
            self.index.add(self._database(vectors[start:start + chunk_size]))
        self.ids.extend(ids)

    def set_search_params(self, params: str) -> None:
        """Apply search parameters such as ``"nprobe=32,k_factor_rf=4"`` or ``"efSearch=128"``
        (faiss's), and ``shortlist=N`` (a ``DiskRefine`` index's candidates per query)."""
        if not params:
            return
        settings = [p.strip() for p in params.split(",") if p.strip()]
        faiss_params = ",".join(p for p in settings if not p.startswith("shortlist="))
        for setting in settings:
            if setting.startswith("shortlist="):
                self._set_shortlist(params, setting.split("=", 1)[1])
        if faiss_params:
            try:
                faiss.ParameterSpace().set_index_parameters(self.index, faiss_params)
            except RuntimeError as err:
                raise SelfRagError(f"bad faiss search parameters {params!r} for "
                                   f"{self.meta['factory']!r}: {str(err).strip()}") from None
        self.meta["search_params"] = params

    def _set_shortlist(self, params: str, value: str) -> None:
        if "disk_refine" not in self.meta:
            raise SelfRagError(f"search parameter shortlist= in {params!r} needs a DiskRefine "
                               f"index; {self.meta['factory']!r} is not one")
        if not value.isdigit() or int(value) < 1:
            raise SelfRagError(f"shortlist must be a positive integer, not {value!r}")
        self.meta["disk_refine"]["shortlist"] = int(value)

    def search(self, queries: np.ndarray, k: int, batch_size: int = 2048,
               ) -> tuple[np.ndarray, list[list[str]]]:
        """Top-``k`` passages per query: scores ``[q, k]`` and lists of passage ids.

        Scores are inner products (as faiss estimates them for compressed indexes; with the MIPS
        transform, recovered from the L2 distance as ``(||q||² + M² - distance) / 2``). Rows where
        faiss found fewer than ``k`` results are shorter (their scores are ``-inf``).
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise SelfRagError(f"query vectors have shape {queries.shape}; index dimension is "
                               f"{self.dim}")
        k = min(k, len(self))
        scores = np.full((len(queries), k), -np.inf, dtype=np.float32)
        hits: list[list[str]] = []
        for start in range(0, len(queries), batch_size):
            s, rows = self.search_rows(queries[start:start + batch_size], k)
            for i, row in enumerate(rows):
                found = row[row >= 0]
                scores[start + i, :len(found)] = s[i, :len(found)]
                hits.append([self.ids[int(r)] for r in found])
        return scores, hits

    def search_rows(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`search` by row number: scores ``[q, k]`` and rows ``[q, k]`` (-1: none).

        A ``DiskRefine`` index takes ``max(k, shortlist)`` candidates from the faiss index and
        returns the best ``k`` of them by their inner products with the vectors on disk.
        """
        refine = self.meta.get("disk_refine")
        if refine is not None and self.disk is None:
            raise SelfRagError("this DiskRefine index has no vectors on disk attached: load it "
                               "with PassageIndex.load or build it with build_disk_index")
        wanted = max(k, refine["shortlist"]) if refine else k
        if self.mips:
            s, rows = self.index.search(mips_queries(queries), wanted)
            offset = (np.einsum("ij,ij->i", queries, queries, dtype=np.float64)
                      + self.meta["mips_max_norm"] ** 2)
            s = ((offset[:, None] - s) / 2).astype(np.float32)
        else:
            s, rows = self.index.search(queries, wanted)
        if refine:
            s, rows = rerank(self.disk, queries, rows, k)
        return s, rows

    def to_gpu(self) -> None:
        """Move the index to all visible GPUs when faiss was built with GPU support."""
        if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0:
            logger.info("no GPU faiss available; searching on CPU")
            return
        try:
            self.index = faiss.index_cpu_to_all_gpus(self.index)
        except RuntimeError as err:  # e.g. HNSW has no GPU version
            logger.warning("keeping the index on CPU: %s", str(err).strip().splitlines()[-1])

    def save(self, folder: str | os.PathLike) -> None:
        """Write the index folder atomically (a complete folder or none).

        A ``DiskRefine`` index is not saved: it lives in the folder it was built in.
        """
        if "disk_refine" in self.meta:
            raise SelfRagError("a DiskRefine index is written in its folder by build_disk_index "
                               "and cannot be saved elsewhere")
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
        try:
            self.write_files(tmp)
            replace_folder(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def write_files(self, folder: Path) -> None:
        """Write ``index.faiss``, the ids and ``meta.json`` into an existing ``folder``."""
        index = self.index
        if hasattr(faiss, "index_gpu_to_cpu") and faiss.get_num_gpus() > 0:
            try:
                index = faiss.index_gpu_to_cpu(index)
            except RuntimeError:
                pass  # already a CPU index
        faiss.write_index(index, str(folder / INDEX_FILE))
        ids_file = self.ids.save(folder)
        write_json_atomic(folder / META_FILE, {**self.meta, "count": len(self),
                                               "ids_file": ids_file}, indent=1)

    @classmethod
    def load(cls, folder: str | os.PathLike, encoder: dict | None = None,
             search_params: str | None = None) -> PassageIndex:
        """Read a saved index folder and check it against the querying encoder.

        Args:
            folder: the folder written by :meth:`save`.
            encoder: ``{name, dim, pooling, normalize}`` of the query encoder; when given, the
                stored encoder must match (a mismatch means meaningless scores).
            search_params: override the stored faiss search parameters.

        Raises:
            InputError: missing/corrupt files, count mismatch, encoder or dimension mismatch.
        """
        folder = Path(folder)
        meta_path = folder / META_FILE
        if not meta_path.is_file():
            raise InputError(meta_path, "index metadata not found (not a saved index folder)")
        try:
            meta = json.loads(meta_path.read_text())
        except json.JSONDecodeError as err:
            raise InputError(meta_path, f"malformed JSON: {err.msg}", line=err.lineno) from None
        if meta.get("format") != FORMAT:
            raise InputError(meta_path, f"unknown index format {meta.get('format')!r}",
                             field="format")
        if encoder is not None:
            _check_encoder(meta_path, meta.get("encoder", {}), encoder)
        try:
            index = faiss.read_index(str(folder / INDEX_FILE))
        except RuntimeError as err:
            raise InputError(folder / INDEX_FILE, f"cannot read faiss index: "
                             f"{str(err).strip().splitlines()[-1]}") from None
        ids_path = folder / meta.get("ids_file", "ids.json")
        if not ids_path.is_file():
            raise InputError(ids_path, "index ids file not found")
        refine = meta.get("disk_refine")
        ids = IdMap.load(ids_path, mmap=refine is not None)  # large indexes: ids stay on disk
        if not (len(ids) == index.ntotal == meta.get("count")):
            raise InputError(meta_path, f"index holds {index.ntotal} vectors, {ids_path.name} "
                             f"{len(ids)} ids, metadata says {meta.get('count')}", field="count")
        mips = meta.get("mips_transform", False)
        if mips not in (True, False):
            raise InputError(meta_path, f"mips_transform must be true or false, not {mips!r}",
                             field="mips_transform")
        if mips:
            norm = meta.get("mips_max_norm")
            if isinstance(norm, bool) or not isinstance(norm, (int, float)) or not norm > 0:
                raise InputError(meta_path, f"mips_transform needs a positive mips_max_norm, "
                                 f"not {norm!r}", field="mips_max_norm")
            if index.metric_type != faiss.METRIC_L2:
                raise InputError(meta_path, "mips_transform needs an L2 faiss index; this one "
                                 f"has metric {index.metric_type}", field="mips_transform")
        if index.d != meta.get("dim", -2) + (1 if mips else 0):
            raise InputError(meta_path, f"faiss index dimension {index.d} does not fit dim "
                             f"{meta.get('dim')}" + (" + 1 (mips_transform)" if mips else ""),
                             field="dim")
        disk = None
        if refine is not None:
            if not isinstance(refine, dict) or refine.get("storage") not in STORAGES \
                    or not isinstance(refine.get("shortlist"), int) or refine["shortlist"] < 1:
                raise InputError(meta_path, "disk_refine must be {storage: fp16|int8, "
                                 f"shortlist: positive integer}}, not {refine!r}",
                                 field="disk_refine")
            disk = DiskVectors(folder, refine["storage"], len(ids), meta["dim"])
        loaded = cls(index, ids, meta, disk)
        loaded.set_search_params(meta.get("search_params", "") if search_params is None
                                 else search_params)
        return loaded


def replace_folder(new: Path, folder: Path) -> None:
    """Move the finished folder ``new`` to ``folder``, replacing any old one (never neither)."""
    set_usual_mode(new)  # mkdtemp's folders are owner-only
    old = None
    if folder.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", dir=folder.parent))
        os.replace(folder, old / folder.name)
    os.replace(new, folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _check_encoder(meta_path: Path, stored: dict, encoder: dict) -> None:
    if stored.get("dim") != encoder.get("dim"):
        raise InputError(meta_path, f"index was built with {stored.get('dim')}-d vectors from "
                         f"{stored.get('name')!r}; the query encoder {encoder.get('name')!r} is "
                         f"{encoder.get('dim')}-d", field="encoder.dim")
    for key in ("name", "pooling", "normalize"):
        if stored.get(key) != encoder.get(key):
            raise InputError(meta_path, f"index was built with encoder {key}="
                             f"{stored.get(key)!r}, but queries use {encoder.get(key)!r}; "
                             "rebuild the index with the same encoder", field=f"encoder.{key}")


def build_from_shards(shards: Iterable[EmbeddingShard], factory: str = "Flat",
                      encoder: dict | None = None, chunk_size: int = 1_000_000,
                      train_size: int = DEFAULT_TRAIN_SIZE, search_params: str = "",
                      seed: int = 0, mips_transform: bool = False) -> PassageIndex:
    """Build an index in memory from embedding shards (checked to agree with ``encoder``).

    Indexes that need training are trained on up to ``train_size`` vectors drawn uniformly from
    all shards; vectors are then added shard by shard in chunks of ``chunk_size``. With
    ``mips_transform`` (recommended for IVF/PQ indexes over unnormalised vectors), a first pass
    over the shards finds the largest norm M (module docstring). ``DiskRefine`` indexes are
    built on disk by :func:`selfrag.retrieval.disk_build.build_disk_index`.

    Raises:
        InputError: a shard's recorded encoder or dimension differs from ``encoder``.
    """
    if split_disk_refine(factory)[1]:
        raise SelfRagError(f"{factory!r} keeps its vectors on disk: build it in its folder with "
                           "build_disk_index (passage_retrieval.py does so)")
    shards = list(shards)
    index = trained_index(shards, factory, encoder, chunk_size, train_size, search_params, seed,
                          mips_transform)
    bar = tqdm(total=sum(len(s.ids) for s in shards), desc="indexing", unit="vec")
    for shard in shards:
        for start in range(0, len(shard.ids), chunk_size):
            end = start + chunk_size
            index.add(shard.ids[start:end], shard_rows(shard, start, end), chunk_size)
            bar.update(len(shard.ids[start:end]))
    bar.close()
    return index


def trained_index(shards: list[EmbeddingShard], factory: str, encoder: dict | None,
                  chunk_size: int, train_size: int, search_params: str, seed: int,
                  mips_transform: bool) -> PassageIndex:
    """Check the shards (encoder, dimension, unique ids), create the empty index and train it
    on up to ``train_size`` vectors drawn uniformly from all shards (see build_from_shards)."""
    if not shards:
        raise SelfRagError("no embedding shards to index")
    dim = shards[0].vectors.shape[1]
    if encoder is not None:
        if dim != encoder.get("dim"):
            raise InputError(shards[0].path, f"embeddings are {dim}-d but encoder "
                             f"{encoder.get('name')!r} is {encoder.get('dim')}-d", field="dim")
        for shard in shards:
            if shard.meta.get("encoder"):
                _check_encoder(shard.path.with_suffix(".json"), shard.meta["encoder"], encoder)
    _check_unique_ids(shards)
    norm = None
    if mips_transform:
        norm = max(max_norm(s.vectors, chunk_size) for s in shards) or 1.0
    index = PassageIndex.create(dim, factory, encoder, search_params, mips_max_norm=norm)
    if not index.index.is_trained:
        total = sum(len(s.ids) for s in shards)
        rng = np.random.default_rng(seed)
        take = np.sort(rng.choice(total, size=min(train_size, total), replace=False))
        sample, offset = [], 0
        for shard in shards:
            local = take[(take >= offset) & (take < offset + len(shard.ids))] - offset
            sample.append(shard_rows(shard, local))
            offset += len(shard.ids)
        index.train(np.concatenate(sample))
    return index


def shard_rows(shard: EmbeddingShard, start, end: int | None = None) -> np.ndarray:
    """float32 copy of rows ``start:end`` (or of the row numbers ``start``) of a shard.

    Rows of a memory-mapped ``.npy`` shard are read with positional reads, not through the
    mapping, so that no page of the shard stays in (or counts towards) the process's memory.
    """
    vectors = shard.vectors
    if not isinstance(vectors, np.memmap):
        return np.array(vectors[start:end] if end is not None else vectors[start],
                        dtype=np.float32)
    dim, dtype = vectors.shape[1], vectors.dtype
    row_size = dtype.itemsize * dim
    header = npy_header(shard.path)
    if header is None:
        raise InputError(shard.path, "not a readable .npy file")
    data_start = header[2]
    fd = os.open(shard.path, os.O_RDONLY)
    try:
        if end is not None:
            end = min(end, len(vectors))
            rows = np.empty((max(end - start, 0), dim), dtype=dtype)
            _read_into(fd, rows, data_start + start * row_size, shard.path)
        else:
            rows = np.empty((len(start), dim), dtype=dtype)
            for i, row in enumerate(np.asarray(start, dtype=np.int64).tolist()):
                _read_into(fd, rows[i], data_start + row * row_size, shard.path)
    finally:
        os.close(fd)
    return rows.astype(np.float32, copy=False)


def _read_into(fd: int, buffer: np.ndarray, offset: int, path: Path) -> None:
    """Fill ``buffer`` from the file at ``offset`` (looping: one read returns at most ~2 GB)."""
    if buffer.size == 0:
        return
    view, done = memoryview(buffer).cast("B"), 0
    while done < len(view):
        count = os.preadv(fd, [view[done:]], offset + done)
        if count == 0:
            raise InputError(path, "file is shorter than its .npy header says")
        done += count


def _check_unique_ids(shards: list[EmbeddingShard]) -> None:
    """A passage id may occur in one row of one shard only."""
    if all(canonical_int(str(i)) for s in shards for i in s.ids):  # 8 bytes an id suffice
        all_ids = np.fromiter((int(i) for s in shards for i in s.ids), dtype=np.int64,
                              count=sum(len(s.ids) for s in shards))
    else:
        all_ids = np.concatenate([np.asarray(s.ids, dtype=str) for s in shards])
    unique, counts = np.unique(all_ids, return_counts=True)
    if len(unique) == len(all_ids):
        return
    duplicate = unique[np.argmax(counts > 1)]
    dup = str(duplicate)
    rows = np.flatnonzero(all_ids == duplicate)
    bounds = np.cumsum([len(s.ids) for s in shards])
    where = [f"{shards[int(np.searchsorted(bounds, r, side='right'))].path.name}" for r in rows[:2]]
    raise InputError(shards[int(np.searchsorted(bounds, rows[1], side="right"))].path,
                     f"duplicate passage id {dup!r} (in {where[0]} and {where[1]})", field="ids")
