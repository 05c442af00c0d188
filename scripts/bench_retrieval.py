"""Measure faiss index configurations for full-Wikipedia retrieval, and the encoder's speed.

Draws N vectors (default 1,000,000, d=768) that resemble real dense-retriever embeddings: a
Gaussian mixture with a few thousand centres whose spread, like the within-cluster noise, has a
decaying (anisotropic) spectrum in a random orientation. For an exact ``Flat`` index and the
compressed configurations it prints bytes per vector, the index's RAM, build (train + add) time,
queries/s (batches of 1,000 queries, top-20) and recall@20 against the exact top-20, and the
memory extrapolated to the 21,015,324 passages of DPR's Wikipedia (spec §8.3, §16 item 4). Then
it measures passages/s of the offline encoder (and of a Contriever-sized random BERT) on real
passages from the bundled corpus. Example (about 15 minutes on 2 CPU cores)::

    nice -n 10 python scripts/bench_retrieval.py
    python scripts/bench_retrieval.py --n 100000 --configs flat ivfpq   # quick look
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
from tqdm.auto import tqdm

WIKIPEDIA_PASSAGES = 21_015_324  # DPR psgs_w100.tsv (spec §8.3)
K, QUERY_BATCH = 20, 1_000
CHUNK = 100_000

# name -> (factory string, search-parameter settings separated by ';'); all inner product, like the original (spec §8.4)
CONFIGS = {
    "flat": ("Flat", ""),
    # 4-bit fast-scan PQ in 512 inverted lists: 32 B of codes + 8 B id per vector
    "ivfpq_fs": ("IVF512,PQ64x4fs", "nprobe=32;nprobe=128"),
    # + a second, finer PQ code (128 B) that re-ranks a shortlist of k_factor_rf x 20
    "ivfpq_fs_refine_pq": ("IVF512,PQ64x4fs,Refine(PQ256x4)",
                           "nprobe=32,k_factor_rf=16;nprobe=128,k_factor_rf=64"),
    # + 8-bit scalar-quantised vectors for re-ranking (768 B: near-exact, 4x below Flat)
    "ivfpq_fs_refine_sq8": ("IVF512,PQ64x4fs,Refine(SQ8)",
                            "nprobe=32,k_factor_rf=16;nprobe=128,k_factor_rf=64"),
}
# Diagnostics, not run by default: where the recall is lost (cell choice vs code size).
EXTRA_CONFIGS = {
    "ivf_flat": ("IVF512,Flat", "nprobe=32;nprobe=128"),
    "ivfpq_fs_wide_refine_sq8": ("IVF512,PQ192x4fs,Refine(SQ8)",
                                 "nprobe=32,k_factor_rf=16;nprobe=128,k_factor_rf=64"),
}
IVF_TRAIN_ITERATIONS = 10  # k-means iterations for the coarse quantizer (faiss default: 25)


class MixtureData:
    """Clustered, anisotropic vectors, generated chunk by chunk from a seed (reproducible).

    Centres and within-cluster noise both have a decaying spectrum (amplitude ~ i^-decay) in a
    random orthonormal basis over the first ``rank`` directions, plus a small isotropic floor in
    every direction: most variance in few directions, as in real embeddings, yet full rank.
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
        """All ``n`` vectors in a float32 memmap (generated once, reused by every config)."""
        if not path.is_file():
            tmp = path.with_suffix(".tmp")
            out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(n, self.dim))
            for i, start in enumerate(tqdm(range(0, n, CHUNK), desc="drawing vectors",
                                           unit="chunk")):
                out[start:start + CHUNK] = self.chunk(i, min(CHUNK, n - start))
            out.flush()
            del out
            os.replace(tmp, path)
        return np.load(path, mmap_mode="r")


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def build(vectors: np.ndarray, factory: str, params: str, train_n: int):
    index = faiss.index_factory(vectors.shape[1], factory, faiss.METRIC_INNER_PRODUCT)
    try:
        faiss.extract_index_ivf(index).cp.niter = IVF_TRAIN_ITERATIONS
    except RuntimeError:
        pass  # not an IVF index
    start = time.perf_counter()
    if not index.is_trained:  # a uniform sample of the database, as in build_from_shards
        rows = np.sort(np.random.default_rng(1).choice(len(vectors), train_n, replace=False))
        index.train(np.ascontiguousarray(vectors[rows]))
    train_s = time.perf_counter() - start
    for s in tqdm(range(0, len(vectors), CHUNK), desc=factory[:30], unit="chunk", leave=False):
        index.add(np.ascontiguousarray(vectors[s:s + CHUNK]))
    return index, train_s, time.perf_counter() - start


def measure(index, queries: np.ndarray):
    index.search(queries[:50], K)  # warm-up
    start = time.perf_counter()
    scores, ids = [], []
    for s in range(0, len(queries), QUERY_BATCH):
        d, i = index.search(queries[s:s + QUERY_BATCH], K)
        scores.append(d)
        ids.append(i)
    return len(queries) / (time.perf_counter() - start), np.concatenate(ids)


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
    p.add_argument("--train", type=int, default=25_600,
                   help="training vectors for IVF/PQ (>= 39 per IVF list)")
    p.add_argument("--data_cache", default=None,
                   help="where the drawn vectors are kept (default: a file in the temp folder)")
    p.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS) + list(EXTRA_CONFIGS),
                   help="index configurations to measure (flat is always built: it is the truth)")
    p.add_argument("--skip_encoder", action="store_true", help="do not measure the encoder")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")
    args = p.parse_args(argv)

    print(f"faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads, "
          f"N={args.n:,} d={args.dim} centres={args.centres}", flush=True)
    data = MixtureData(args.dim, args.centres)
    queries = data.chunk(999_999, args.queries)
    cache = Path(args.data_cache or Path(tempfile.gettempdir()) /
                 f"selfrag_bench_{args.n}x{args.dim}_c{args.centres}.npy")
    vectors = data.materialize(args.n, cache)
    results, exact = [], None
    for name in ["flat"] + [c for c in args.configs if c != "flat"]:
        factory, params = {**CONFIGS, **EXTRA_CONFIGS}[name]
        before = rss_bytes()
        index, train_s, build_s = build(vectors, factory, params, args.train)
        ram = rss_bytes() - before
        size = len(faiss.serialize_index(index))
        for setting in params.split(";"):
            if setting:
                faiss.ParameterSpace().set_index_parameters(index, setting)
            qps, found = measure(index, queries)
            if exact is None:
                exact = found
            row = {"name": name, "factory": factory, "search_params": setting,
                   "bytes_per_vector": size / args.n, "index_bytes": size, "rss_growth": ram,
                   "train_s": train_s, "build_s": build_s, "queries_per_s": qps,
                   "recall_at_20": recall_at_k(found, exact),
                   "top1_in_20": top1_in_k(found, exact),
                   "wikipedia_GB": size / args.n * WIKIPEDIA_PASSAGES / 1e9,
                   "wikipedia_GB_with_id_map": (size / args.n + 8) * WIKIPEDIA_PASSAGES / 1e9}
            results.append(row)
            print(json.dumps(row), flush=True)
        del index
    print(f"\n{'config':<22}{'B/vec':>8}{'RAM MB':>9}{'build s':>9}{'q/s':>9}"
          f"{'R@20':>7}{'1-R@20':>7}{'21M GB':>8}  factory")
    for r in results:
        print(f"{r['name']:<22}{r['bytes_per_vector']:>8.1f}{r['index_bytes'] / 1e6:>9.0f}"
              f"{r['build_s']:>9.1f}{r['queries_per_s']:>9.0f}{r['recall_at_20']:>7.3f}"
              f"{r['top1_in_20']:>7.3f}"
              f"{r['wikipedia_GB_with_id_map']:>8.2f}  {r['factory']} [{r['search_params']}]")
    print("(21M GB: index bytes per vector x 21,015,324 + 8 B/passage for the id map; "
          "R@20 = |top-20 ∩ exact top-20| / 20)")
    speeds = [] if args.skip_encoder else encoder_speed()
    for s in speeds:
        print(f"encoder {s['encoder']}: {s['passages_per_s']:.1f} passages/s on "
              f"{os.cpu_count()} CPU cores")
    if args.json:
        Path(args.json).write_text(json.dumps({"indexes": results, "encoders": speeds}, indent=1))


if __name__ == "__main__":
    main()
