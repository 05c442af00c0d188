"""Measure faiss index configurations for full-Wikipedia retrieval, and the encoder's speed.

Draws N vectors (default 1,000,000, d=768) that resemble real dense-retriever embeddings (the
``MixtureData`` docstring says how and why), prints their statistics (norm spread, effective
dimension, score profile of the exact top-k), then for an exact ``Flat`` index and compressed
configurations prints bytes per vector, the index's RAM, build (train + add) time, queries/s
(batches of 1,000 queries, top-20) and recall@20 against the exact top-20, and the memory
extrapolated to the 21,015,324 passages of DPR's Wikipedia (``psgs_w100.tsv``; the original
README asks for ~100 GB of RAM to search it). Then it measures passages/s of the offline encoder
(and of a Contriever-sized random BERT) on real passages from the bundled corpus.

Configurations marked ``mips`` use the MIPS → L2 reduction of
:mod:`selfrag.retrieval.index` (``PassageIndex.create(..., mips_max_norm=M)``): one extra
coordinate ``sqrt(M² - ||x||²)`` per passage, 0 per query, then L2 search over d+1 dimensions.
Configurations named ``disk_*`` keep compact codes in RAM and re-rank a shortlist exactly from
vectors on disk (``DiskRefine``; measured by :mod:`bench_retrieval_disk`, which also reports the
search process's resident memory and the disk reads per query); ``--real_corpus`` compares flat
and ``DiskRefine`` on the bundled corpus with the bundled PopQA questions.
Recall is always against exact inner-product search. Example (2 CPU cores)::

    python scripts/bench_retrieval.py --skip_encoder --configs flat disk_int8 disk_fp16 \
        --queries 5000 --real_corpus

    nice -n 19 python scripts/bench_retrieval.py --skip_encoder
    python scripts/bench_retrieval.py --n 100000 --configs flat opq_ivfpq96 --skip_encoder  # quick
    python scripts/bench_retrieval.py --data lowrank ...   # the earlier, degenerate generator
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import faiss
import numpy as np
from tqdm.auto import tqdm

from bench_retrieval_disk import (  # noqa: E402
    DISK_CONFIGS,
    QUERY_BATCH,
    WIKIPEDIA_PASSAGES,
    K,
    measure_disk_config,
    print_disk_table,
    proc_status,
    real_corpus_check,
)
from selfrag.retrieval.index import max_norm, mips_database, mips_queries

CHUNK = 100_000

# name -> (factory string, search-parameter settings separated by ';', MIPS transform?).
# Without the transform: an inner-product index, like the original's ``src/index.Indexer``.
# Bytes per passage at 21M = codes + 8 B id inside IVF lists + 8 B in our id map; the 4 GB
# target leaves <= 190 B in all.
CONFIGS = {
    "flat": ("Flat", "", False),
    # 1024 lists + 96 B of 8-bit PQ codes (8-d sub-vectors) + 8 B list id: 104 B
    "ivfpq96": ("IVF1024,PQ96", "nprobe=32;nprobe=64;nprobe=128", False),
    # 32 B of 4-bit fast-scan codes scanned, a shortlist of k_factor_rf x 20 re-ranked with a
    # second, 128 B PQ code: 32 + 8 + 128 = 168 B
    "ivfpq_fs_refine_pq128": ("IVF1024,PQ64x4fsr,Refine(PQ128)",
                              ("nprobe=32,k_factor_rf=8;nprobe=64,k_factor_rf=8;"
                               "nprobe=128,k_factor_rf=16"), False),
    # the inverted lists alone (uncompressed): the recall ceiling of the cell choice
    "ivf_flat": ("IVF1024,Flat", "nprobe=32;nprobe=64;nprobe=128", False),
    # the same with the MIPS -> L2 transform
    "ivf_flat_mips": ("IVF1024,Flat", "nprobe=32;nprobe=64;nprobe=128", True),
}
# Not run by default (slow to train on 2 cores, or the earlier configurations).
EXTRA_CONFIGS = {
    "opq_ivfpq96": ("OPQ96,IVF1024,PQ96", "nprobe=32;nprobe=64;nprobe=128", False),
    "ivfpq96_mips": ("OPQ96_768,IVF1024,PQ96", "nprobe=32;nprobe=64;nprobe=128", True),
    "ivfpq128": ("IVF1024,PQ128", "nprobe=64;nprobe=128", False),
    # the bytes-vs-recall curve of residual PQ codes (192 B and up do not fit 4 GB at 21M)
    "opq_ivfpq128": ("OPQ128,IVF1024,PQ128", "nprobe=64", False),
    "ivfpq192": ("IVF1024,PQ192", "nprobe=64", False),
    "ivfpq256": ("IVF1024,PQ256", "nprobe=64", False),
    "ivfpq384": ("IVF1024,PQ384", "nprobe=64", False),
    "ivfpq_fs": ("IVF512,PQ64x4fs", "nprobe=32;nprobe=128", False),
    "ivfpq_fs_refine_pq": ("IVF512,PQ64x4fs,Refine(PQ256x4)",
                           "nprobe=32,k_factor_rf=16;nprobe=128,k_factor_rf=64", False),
    "ivfpq_fs_refine_sq8": ("IVF512,PQ64x4fs,Refine(SQ8)",
                            "nprobe=32,k_factor_rf=16;nprobe=128,k_factor_rf=64", False),
}
IVF_TRAIN_ITERATIONS = 10  # k-means iterations, coarse quantizer and PQ (faiss default: 25)


class MixtureData:
    """Clustered vectors with the statistics of real passage embeddings, drawn chunk by chunk.

    ``x = exp(σ·z) · (mean + centre[c] + noise · u)``: a common offset ``mean`` (norm 0.6, the
    anisotropy of BERT-family embeddings: random pairs have cosine ≈ 0.2), one of ``centres``
    topic centres, and within-topic variation ``u``. Centres and ``u`` are standard normal vectors
    shaped by the same spectrum, amplitude ∝ i^-0.4 over all 768 directions of a random basis:
    a participation-ratio dimension of ≈ 90 (real sentence encoders: 50–100; the unnormalised
    mean-pooled all-MiniLM-L6-v2 vectors of 2,700 bundled passages measure 90 at d=384), not the
    ≈ 5 of a fast-decaying low-rank spectrum. ``noise = 0.6`` (within-topic spread 0.6 × the
    spread of the centres) makes a query's exact top-20 its topic neighbours, clearly above the
    1000th passage: on 3,000-vector samples (120 centres) the normalised score profile
    ``(s_k - s_median) / (s_1 - s_median)`` is 0.86 / 0.39 / 0.22 at k = 5 / 30 / 100 (real
    MiniLM vectors: 0.71 / 0.45 / 0.32), so the top of the ranking is neither a near-tie nor
    trivially separated; at N = 1,000,000 the exact top-1 / top-20 / top-1000 scores average
    1.87 / 1.60 / 0.86. The per-vector scale ``exp(σ·z)``, σ = 0.1, gives norms that vary
    moderately (coefficient of variation ≈ 0.12, max ≈ 1.6 × mean): an assumption about
    Contriever (not measured here), whose inner-product training makes norms meaningful but
    should not let them dominate (MiniLM's raw, never-trained norms vary more: CV 0.27, max 3 ×
    mean, and its inner-product top-5 is mostly long vectors); the exact top-20 then has a
    mean norm ≈ 1.15 × the average, instead of being the longest vectors of the collection.
    Queries are drawn from the same mixture (a question's vector lies near its passages).
    """

    def __init__(self, dim: int = 768, centres: int = 4096, seed: int = 0, decay: float = 0.4,
                 noise: float = 0.6, mean_norm: float = 0.6, norm_sigma: float = 0.1):
        rng = np.random.default_rng(seed)
        amp = np.arange(1, dim + 1, dtype=np.float64) ** -decay
        amp /= np.sqrt((amp ** 2).sum())
        basis, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
        self.shape = (amp[:, None] * basis.T).astype(np.float32)  # [dim, dim]
        self.centres = rng.standard_normal((centres, dim), dtype=np.float32) @ self.shape
        offset = rng.normal(size=dim)
        self.mean = (offset / np.linalg.norm(offset) * mean_norm).astype(np.float32)
        self.noise, self.seed, self.dim, self.norm_sigma = noise, seed, dim, norm_sigma

    def chunk(self, index: int, size: int) -> np.ndarray:
        rng = np.random.default_rng((self.seed, index))
        which = rng.integers(0, len(self.centres), size)
        within = rng.standard_normal((size, self.dim), dtype=np.float32) @ self.shape
        scale = np.exp(self.norm_sigma * rng.standard_normal((size, 1), dtype=np.float32))
        return scale * (self.centres[which] + self.noise * within + self.mean)

    def materialize(self, n: int, path: Path) -> np.ndarray:
        return _materialize(self, n, path)


class LowRankData:
    """The earlier generator (``--data lowrank``), kept to show why it measured nothing useful.

    Spectrum ∝ i^-0.8 over 128 directions: a participation-ratio dimension of ≈ 5, norms from
    0.5 × to 2.8 × the mean, and an inner-product top-20 made of the longest vectors (mean norm
    2.2 × the average) rather than of the query's neighbours.
    """

    def __init__(self, dim: int = 768, centres: int = 4096, seed: int = 0,
                 decay: float = 0.8, noise: float = 0.6, rank: int = 128, floor: float = 0.01):
        rng = np.random.default_rng(seed)
        scale = np.arange(1, rank + 1, dtype=np.float64) ** -decay
        scale /= np.sqrt((scale ** 2).sum())
        basis, _ = np.linalg.qr(rng.normal(size=(dim, dim)))
        self.shape = (scale[:, None] * basis.T[:rank]).astype(np.float32)  # [rank, dim]
        self.centres = 1.5 * (rng.normal(size=(centres, rank)).astype(np.float32) @ self.shape
                              + floor * rng.normal(size=(centres, dim)).astype(np.float32))
        self.mean = rng.normal(size=dim).astype(np.float32) * 0.02  # a common offset
        self.noise, self.seed, self.dim, self.rank, self.floor = noise, seed, dim, rank, floor

    def chunk(self, index: int, size: int) -> np.ndarray:
        rng = np.random.default_rng((self.seed, index))
        which = rng.integers(0, len(self.centres), size)
        low = rng.standard_normal(size=(size, self.rank), dtype=np.float32) @ self.shape
        floor = rng.standard_normal(size=(size, self.dim), dtype=np.float32) * self.floor
        return self.centres[which] + self.noise * (low + floor) + self.mean

    def materialize(self, n: int, path: Path) -> np.ndarray:
        return _materialize(self, n, path)


def _materialize(data, n: int, path: Path) -> np.ndarray:
    """All ``n`` vectors in a float32 memmap (generated once, reused by every config)."""
    if not path.is_file():
        tmp = path.with_suffix(".tmp")
        out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, data.dim))
        for i, start in enumerate(tqdm(range(0, n, CHUNK), desc="drawing vectors", unit="chunk")):
            out[start:start + CHUNK] = data.chunk(i, min(CHUNK, n - start))
        out.flush()
        del out
        os.replace(tmp, path)
    return np.load(path, mmap_mode="r")


def data_stats(vectors: np.ndarray, queries: np.ndarray, exact_scores: np.ndarray) -> dict:
    """Norm spread, effective dimension and score profile of the drawn data."""
    sample = np.asarray(vectors[:20_000], dtype=np.float64)
    norms = np.linalg.norm(sample, axis=1)
    eig = np.linalg.eigvalsh(np.cov(sample.T))
    unit = sample[:2_000] / norms[:2_000, None]
    cos = unit @ unit.T
    top = exact_scores  # [q, 1000] exact inner products, descending
    return {"norm_cv": float(norms.std() / norms.mean()),
            "norm_max_over_mean": float(norms.max() / norms.mean()),
            "participation_ratio_dim": float(eig.sum() ** 2 / (eig ** 2).sum()),
            "mean_cosine": float(cos[np.triu_indices(len(unit), 1)].mean()),
            "score_top1": float(top[:, 0].mean()), "score_top20": float(top[:, 19].mean()),
            "score_top1000": float(top[:, -1].mean()),
            "top20_gap_share": float(np.mean((top[:, 19] - top[:, -1])
                                             / (top[:, 0] - top[:, -1])))}


def _fewer_kmeans_iterations(index) -> None:
    """IVF_TRAIN_ITERATIONS k-means iterations for the coarse quantizer and the PQ codebooks."""
    index = faiss.downcast_index(index)
    if hasattr(index, "refine_index"):
        _fewer_kmeans_iterations(index.base_index)
        _fewer_kmeans_iterations(index.refine_index)
        return
    try:
        ivf = faiss.downcast_index(faiss.extract_index_ivf(index))
        ivf.cp.niter = IVF_TRAIN_ITERATIONS
        index = ivf
    except RuntimeError:
        pass  # not an IVF index
    if hasattr(index, "pq"):
        index.pq.cp.niter = IVF_TRAIN_ITERATIONS


def build(vectors: np.ndarray, factory: str, train_n: int, mips_norm: float | None = None):
    """Train (on a uniform sample, as ``build_from_shards``) and fill an index; with
    ``mips_norm`` an L2 index over the MIPS-transformed vectors (d+1 dimensions)."""
    dim = vectors.shape[1] + (mips_norm is not None)
    index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT if mips_norm is None
                                else faiss.METRIC_L2)
    _fewer_kmeans_iterations(index)

    def prepare(x):
        x = np.ascontiguousarray(x, dtype=np.float32)
        return x if mips_norm is None else mips_database(x, mips_norm)

    start = time.perf_counter()
    if not index.is_trained:
        rows = np.sort(np.random.default_rng(1).choice(len(vectors), train_n, replace=False))
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)  # many small k-means: threads only wait on each other
        try:
            index.train(prepare(vectors[rows]))
        finally:
            faiss.omp_set_num_threads(threads)
    train_s = time.perf_counter() - start
    for s in tqdm(range(0, len(vectors), CHUNK), desc=factory[:30], unit="chunk", leave=False):
        index.add(prepare(vectors[s:s + CHUNK]))
    return index, train_s, time.perf_counter() - start


def measure(index, queries: np.ndarray, mips: bool = False, k: int = K):
    """Queries/s over batches of QUERY_BATCH (query transform included) and the ids found."""
    prepare = mips_queries if mips else (lambda q: q)
    index.search(prepare(queries[:50]), k)  # warm-up
    start = time.perf_counter()
    scores, ids = [], []
    for s in range(0, len(queries), QUERY_BATCH):
        d, i = index.search(prepare(queries[s:s + QUERY_BATCH]), k)
        scores.append(d)
        ids.append(i)
    return (len(queries) / (time.perf_counter() - start), np.concatenate(ids),
            np.concatenate(scores))


def recall_at_k(found: np.ndarray, exact: np.ndarray) -> float:
    """20-recall@20: the share of the exact top-20 that the index returns in its top-20."""
    return float(np.mean([len(set(f) & set(e)) / K for f, e in zip(found, exact)]))


def top1_in_k(found: np.ndarray, exact: np.ndarray) -> float:
    """1-recall@20: how often the exact nearest passage is among the 20 returned."""
    return float(np.mean([e[0] in set(f) for f, e in zip(found, exact)]))


def encoder_speed(n_passages: int = 128) -> list[dict]:
    import torch

    from selfrag.retrieval.encoder import DEFAULT_ENCODER, Encoder, resolve_encoder
    from selfrag.retrieval.passages import load_passages, passage_text

    corpus = Path(__file__).resolve().parents[1] / "eval_data" / "corpus" / "corpus.jsonl"
    texts = [passage_text(p) for p in load_passages(corpus)[:n_passages]]
    rows = []
    minilm = Encoder.load(DEFAULT_ENCODER, device="cpu")
    minilm.encode(texts[:8], 8)
    start = time.perf_counter()
    minilm.encode(texts, 64, 512)
    rows.append({"encoder": "all-MiniLM-L6-v2 (384-d, max 256 tokens)",
                 "passages_per_s": len(texts) / (time.perf_counter() - start)})
    from transformers import AutoTokenizer, BertConfig, BertModel

    torch.manual_seed(0)
    base = BertModel(BertConfig(), add_pooling_layer=False)  # Contriever's size: BERT-base
    contriever_like = Encoder(base, AutoTokenizer.from_pretrained(resolve_encoder(DEFAULT_ENCODER)),
                              name="bert-base-random")
    few = texts[: max(16, n_passages // 4)]
    start = time.perf_counter()
    contriever_like.encode(few, 16, 512)
    rows.append({"encoder": "BERT-base size (Contriever-like, random weights, 768-d, max 512)",
                 "passages_per_s": len(few) / (time.perf_counter() - start)})
    return rows


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1_000_000, help="vectors in the index")
    p.add_argument("--queries", type=int, default=1_000, help="queries (batches of 1,000)")
    p.add_argument("--dim", type=int, default=768, help="vector dimension")
    p.add_argument("--centres", type=int, default=4096, help="mixture components")
    p.add_argument("--train", type=int, default=40_960,
                   help="training vectors for IVF/PQ/OPQ (>= 39 per IVF list)")
    p.add_argument("--data", choices=["mixture", "lowrank"], default="mixture",
                   help="generator: MixtureData (default) or the earlier LowRankData")
    p.add_argument("--data_cache", default=None,
                   help="where the drawn vectors are kept (default: a file in the temp folder)")
    p.add_argument("--configs", nargs="+", default=list(CONFIGS) + ["disk_int8"],
                   choices=list(CONFIGS) + list(EXTRA_CONFIGS) + list(DISK_CONFIGS),
                   help="index configurations to measure (flat is always built: it is the truth)")
    p.add_argument("--disk_dir", default=None,
                   help="where disk_* indexes are built (default: a folder in the temp folder)")
    p.add_argument("--repeats", type=int, default=3,
                   help="disk_*: passes over the queries per setting (the median is reported)")
    p.add_argument("--real_corpus", action="store_true",
                   help="also compare flat and DiskRefine on the bundled corpus and PopQA")
    p.add_argument("--skip_encoder", action="store_true", help="do not measure the encoder")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)

    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads, "
          f"N={args.n:,} d={args.dim} centres={args.centres} data={args.data}", flush=True)
    data = (MixtureData if args.data == "mixture" else LowRankData)(args.dim, args.centres)
    queries = data.chunk(999_999, args.queries)
    cache = Path(args.data_cache or Path(tempfile.gettempdir()) /
                 f"selfrag_bench_{args.data}_{args.n}x{args.dim}_c{args.centres}.npy")
    vectors = data.materialize(args.n, cache)
    results, exact, stats, norm, disk_results = [], None, {}, None, []
    for name in ["flat"] + [c for c in args.configs if c != "flat"]:
        if name in DISK_CONFIGS:
            workdir = Path(args.disk_dir or Path(tempfile.gettempdir()) / "selfrag_bench_disk")
            workdir.mkdir(parents=True, exist_ok=True)
            for row in measure_disk_config(name, str(cache), args.n, queries, exact, args.train,
                                           workdir, args.repeats):
                disk_results.append(row)
                print(json.dumps(row), flush=True)
            continue
        factory, params, mips = {**CONFIGS, **EXTRA_CONFIGS}[name]
        if mips and norm is None:
            norm = max_norm(vectors)
        before = proc_status()["VmRSS"]
        index, train_s, build_s = build(vectors, factory, args.train, norm if mips else None)
        ram = proc_status()["VmRSS"] - before
        size = len(faiss.serialize_index(index))
        for setting in params.split(";"):
            if setting:
                faiss.ParameterSpace().set_index_parameters(index, setting)
            qps, found, _ = measure(index, queries, mips)
            if exact is None:
                exact = found
                stats = data_stats(vectors, queries, measure(index, queries, k=1000)[2])
                print(json.dumps({"data": stats}), flush=True)
            row = {"name": name + (" (mips)" if mips and "mips" not in name else ""),
                   "factory": factory, "search_params": setting, "mips_transform": mips,
                   "bytes_per_vector": size / args.n, "index_bytes": size, "rss_growth": ram,
                   "train_s": train_s, "build_s": build_s, "queries_per_s": qps,
                   "recall_at_20": recall_at_k(found, exact),
                   "top1_in_20": top1_in_k(found, exact),
                   "wikipedia_GB": size / args.n * WIKIPEDIA_PASSAGES / 1e9,
                   "wikipedia_GB_with_id_map": (size / args.n + 8) * WIKIPEDIA_PASSAGES / 1e9}
            results.append(row)
            print(json.dumps(row), flush=True)
        del index
    print(f"\ndata: norm CV {stats['norm_cv']:.3f}, max/mean norm {stats['norm_max_over_mean']:.2f}, "
          f"participation-ratio dim {stats['participation_ratio_dim']:.0f}, mean cosine "
          f"{stats['mean_cosine']:.2f}; exact scores top-1 {stats['score_top1']:.2f}, top-20 "
          f"{stats['score_top20']:.2f}, top-1000 {stats['score_top1000']:.2f}")
    print(f"\n{'config':<26}{'B/vec':>8}{'RAM MB':>9}{'build s':>9}{'q/s':>9}"
          f"{'R@20':>7}{'1-R@20':>7}{'21M GB':>8}  factory")
    for r in results:
        print(f"{r['name']:<26}{r['bytes_per_vector']:>8.1f}{r['index_bytes'] / 1e6:>9.0f}"
              f"{r['build_s']:>9.1f}{r['queries_per_s']:>9.0f}{r['recall_at_20']:>7.3f}"
              f"{r['top1_in_20']:>7.3f}"
              f"{r['wikipedia_GB_with_id_map']:>8.2f}  {r['factory']} [{r['search_params']}]")
    print("(21M GB: index bytes per vector x 21,015,324 + 8 B/passage for the id map; "
          "R@20 = |top-20 ∩ exact top-20| / 20)")
    if disk_results:
        print_disk_table(disk_results)
    real = None
    if args.real_corpus:
        real = real_corpus_check()
        print(f"\nreal text: {real['passages']:,} bundled passages (all-MiniLM-L6-v2), "
              f"{real['questions']} PopQA questions; answer in the top 20 with Flat: "
              f"{real['flat_answer_in_top20']:.2f}")
        for row in real["settings"]:
            print(f"  {real['factory']} [{row['search_params']}]: answer in the top 20 "
                  f"{row['answer_in_top20']:.2f}, recall@20 vs Flat "
                  f"{row['recall_at_20_vs_flat']:.3f}")
    speeds = [] if args.skip_encoder else encoder_speed()
    for s in speeds:
        print(f"encoder {s['encoder']}: {s['passages_per_s']:.1f} passages/s on "
              f"{os.cpu_count()} CPU cores")
    if args.json:
        Path(args.json).write_text(json.dumps({"data": stats, "indexes": results,
                                               "disk_refine": disk_results, "real_corpus": real,
                                               "encoders": speeds}, indent=1))


if __name__ == "__main__":
    main()
