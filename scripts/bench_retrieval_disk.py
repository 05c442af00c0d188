"""``DiskRefine`` measurements of ``bench_retrieval.py``: compact codes in RAM, exact re-ranking
from vectors on disk (:mod:`selfrag.retrieval.disk_vectors`).

For each configuration, the index is built with the library's
:func:`~selfrag.retrieval.disk_build.build_disk_index` (in a child process, whose peak resident
memory is compared with the bound the build prints), then searched in another child process
that loads the saved folder, as a retrieval job would. Per search setting (nprobe, shortlist) it
reports, batch 1,000, top-20: recall@20 against exact search, queries/s (median of repeated
passes, vector file in the page cache), the rows re-ranked per query and their bytes, and the
search process's memory from ``/proc/self/status``: ``RssAnon`` (memory the process owns: the
candidate index, buffers) and ``RssFile`` (pages of memory-mapped files it has touched: the
vectors and ids read, page cache the kernel can drop). For the default (first) setting a third
process times one pass after dropping the on-disk files from the page cache
(``posix_fadvise(DONTNEED)``; the drop in the kernel's ``Cached`` is reported), i.e. reading
them from this machine's disk.

``real_corpus_check`` repeats the comparison on real text: the bundled corpus under the default
encoder (its shipped vectors) and the bundled PopQA questions, flat vs ``DiskRefine``.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from selfrag.retrieval.disk_vectors import SCALES_FILE, VECTORS_FILE, row_bytes  # noqa: E402

K, QUERY_BATCH, PAGE = 20, 1_000, 4096  # top-k, queries per search call, page size
WIKIPEDIA_PASSAGES = 21_015_324  # DPR psgs_w100.tsv, the original's full corpus
# At 21M passages, IVF lists grow with sqrt(N) (faiss's guideline: 4-16·sqrt(N)); the
# extrapolation counts 65,536 coarse centroids in RAM.
WIKIPEDIA_NLIST = 65_536

# name -> (factory string, search settings separated by ';' (the first is the default),
# training vectors (None: the script's --train))
DISK_CONFIGS = {
    "disk_int8": ("IVF1024,PQ64x4fs,DiskRefine(int8)",
                  "nprobe=32,shortlist=256;nprobe=16,shortlist=128;nprobe=16,shortlist=256;"
                  "nprobe=32,shortlist=128;nprobe=64,shortlist=256;nprobe=64,shortlist=512", None),
    "disk_fp16": ("IVF1024,PQ64x4fs,DiskRefine(fp16)",
                  "nprobe=32,shortlist=256;nprobe=32,shortlist=128;nprobe=64,shortlist=512", None),
    # half the code bytes in RAM
    "disk_int8_pq32": ("IVF1024,PQ32x4fs,DiskRefine(int8)",
                       "nprobe=32,shortlist=256;nprobe=32,shortlist=512;nprobe=64,shortlist=512",
                       None),
    # 4x the lists (245 vectors each, as 21M passages in 85,000 lists): how nprobe scales
    "disk_int8_ivf4096": ("IVF4096,PQ64x4fs,DiskRefine(int8)",
                          "nprobe=64,shortlist=256;nprobe=128,shortlist=256;"
                          "nprobe=32,shortlist=256", 4096 * 40),
}


def proc_status() -> dict[str, int]:
    """Memory fields of ``/proc/self/status`` in bytes (VmRSS, VmHWM, RssAnon, RssFile)."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0]) * 1024
    return out


def _shard(vectors_path: str, n: int):
    from selfrag.retrieval.embeddings import EmbeddingShard

    vectors = np.load(vectors_path, mmap_mode="r")[:n]
    return EmbeddingShard(Path(vectors_path), [str(i) for i in range(n)], vectors, {})


def build_process(vectors_path: str, n: int, folder: str, factory: str, train_n: int) -> dict:
    """(child) Build the index; return seconds, the printed memory bound and the peak RSS."""
    from selfrag.retrieval.disk_build import build_disk_index, code_bytes, memory_bound

    shard = _shard(vectors_path, n)
    before = proc_status()
    start = time.perf_counter()
    index = build_disk_index([shard], folder, factory, chunk_size=100_000, train_size=train_n)
    seconds = time.perf_counter() - start
    after = proc_status()
    bound = memory_bound(n, index.dim, code_bytes(index.index), train_n, [shard.ids])
    return {"build_s": seconds, "bound_bytes": bound["total"],
            "peak_growth_bytes": after["VmHWM"] - before["VmRSS"]}


def _evict(folder: Path) -> None:
    """Drop the vector files' pages from the page cache (they are clean: nothing is lost)."""
    for name in (VECTORS_FILE, SCALES_FILE, "ids.npy"):
        path = folder / name
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def _page_cache_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("Cached:"):
            return int(line.split()[1]) * 1024
    return 0


def search_process(folder: str, queries_path: str, settings: list[str], repeats: int,
                   cold: bool = False) -> dict:
    """(child) Load the index folder and measure every search setting (module docstring).

    With ``cold``, the index's on-disk files are first dropped from the page cache (which works
    only for pages no process has mapped: hence a fresh process) and one pass is timed.
    """
    import torch

    from selfrag.retrieval.index import PassageIndex

    torch.set_num_threads(os.cpu_count() or 1)
    queries = np.load(queries_path)
    cached = _page_cache_bytes()
    if cold:
        _evict(Path(folder))
    evicted = cached - _page_cache_bytes()
    before = proc_status()
    index = PassageIndex.load(folder)
    loaded = proc_status()

    def one_pass() -> tuple[float, list[list[str]]]:
        start, hits = time.perf_counter(), []
        for s in range(0, len(queries), QUERY_BATCH):
            hits += index.search(queries[s:s + QUERY_BATCH], K)[1]
        return len(queries) / (time.perf_counter() - start), hits

    rows = []
    for setting in settings:
        index.set_search_params(setting)
        if not cold:
            index.search(queries[:50], K)  # warm-up
        index.disk.rows_read = 0
        speeds, hits = [], None
        for _ in range(1 if cold else repeats):
            qps, hits = one_pass()
            speeds.append(qps)
        rows.append({"search_params": setting, "queries_per_s": statistics.median(speeds),
                     "queries_per_s_all": speeds,
                     "rows_per_query": index.disk.rows_read / len(speeds) / len(queries),
                     "hits": hits})
    return {"settings": rows, "evicted_bytes": evicted, "rss_before_load": before,
            "rss_after_load": loaded, "rss_after_search": proc_status()}


def pages_per_row(storage: str, dim: int) -> float:
    """4 KiB pages a vector row spans on average (rows of b bytes cross a page boundary with
    probability (b - 1) / 4096)."""
    vector_bytes = dim * (2 if storage == "fp16" else 1)
    return 1 + (vector_bytes - 1) / PAGE


def _spawn():
    return ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))


def measure_disk_config(name: str, vectors_path: str, n: int, queries: np.ndarray,
                        exact: np.ndarray, train_n: int, workdir: Path, repeats: int = 3,
                        ) -> list[dict]:
    """Build and measure one configuration of :data:`DISK_CONFIGS`; one row per setting."""
    factory, settings, config_train = DISK_CONFIGS[name]
    settings, train_n = settings.split(";"), config_train or train_n
    folder = workdir / f"{name}_{n}"
    queries_path = workdir / "queries.npy"
    np.save(queries_path, queries)
    with _spawn() as pool:
        built = pool.submit(build_process, vectors_path, n, str(folder), factory,
                            train_n).result()
    with _spawn() as pool:
        searched = pool.submit(search_process, str(folder), str(queries_path), settings,
                               repeats).result()
    with _spawn() as pool:
        cold = pool.submit(search_process, str(folder), str(queries_path), settings[:1], 1,
                           True).result()
    meta = json.loads((folder / "meta.json").read_text())
    storage, dim = meta["disk_refine"]["storage"], meta["dim"]
    ram_files = sum(f.stat().st_size for f in folder.iterdir()
                    if f.name not in (VECTORS_FILE, SCALES_FILE, "ids.npy"))
    disk_bytes = sum(f.stat().st_size for f in folder.iterdir()) - ram_files
    anon_growth = (searched["rss_after_search"]["RssAnon"]
                   - searched["rss_before_load"]["RssAnon"])
    # at 21M: the candidate index's bytes per passage (codes, list ids) x 21M, the centroids of
    # WIKIPEDIA_NLIST lists, and what the search process held beyond the index (its buffers)
    nlist = int(factory.split(",")[0][3:])
    ram_21m = ((ram_files - nlist * dim * 4) / n * WIKIPEDIA_PASSAGES
               + WIKIPEDIA_NLIST * dim * 4 + max(anon_growth - ram_files, 0))
    results = []
    for row in searched["settings"]:
        hits = row.pop("hits")
        recall = float(np.mean([len({int(h) for h in found} & set(map(int, truth))) / K
                                for found, truth in zip(hits, exact)]))
        result = {
            "name": name, "factory": factory, "search_params": row["search_params"],
            "recall_at_20": recall, "queries_per_s": row["queries_per_s"],
            "queries_per_s_all": row["queries_per_s_all"],
            "rows_per_query": row["rows_per_query"],
            "bytes_read_per_query": row["rows_per_query"] * row_bytes(storage, dim),
            "build_s": built["build_s"], "build_bound_MB": built["bound_bytes"] / 1e6,
            "build_peak_growth_MB": built["peak_growth_bytes"] / 1e6,
            "index_ram_files_MB": ram_files / 1e6, "disk_files_MB": disk_bytes / 1e6,
            "search_rss_anon_growth_MB": anon_growth / 1e6,
            "search_rss_file_MB": searched["rss_after_search"]["RssFile"] / 1e6,
            "search_vm_hwm_MB": searched["rss_after_search"]["VmHWM"] / 1e6,
            "wikipedia_ram_GB": ram_21m / 1e9,
            "wikipedia_disk_GB": disk_bytes / n * WIKIPEDIA_PASSAGES / 1e9,
            # cold cache: every re-ranked row is a random read of the 4 KiB pages it spans (on
            # average 1 + (row - 1) / 4096 of them); int8 scales (4 B a row) stay cached
            "wikipedia_random_reads_per_s": (row["queries_per_s"] * row["rows_per_query"]
                                             * pages_per_row(storage, dim)),
        }
        if row["search_params"] == settings[0]:
            result["cold_queries_per_s"] = cold["settings"][0]["queries_per_s"]
            result["cold_evicted_MB"] = cold["evicted_bytes"] / 1e6
        results.append(result)
    return results


def print_disk_table(results: list[dict]) -> None:
    print(f"\n{'DiskRefine config':<18}{'params':<24}{'R@20':>6}{'q/s':>7}{'cold q/s':>9}"
          f"{'rows/q':>7}{'KB/q':>6}{'anon MB':>8}{'file MB':>8}{'build s':>8}"
          f"{'bound/peak MB':>14}{'21M RAM GB':>11}{'21M disk GB':>12}{'21M reads/s':>12}")
    for r in results:
        cold = f"{r['cold_queries_per_s']:.0f}" if "cold_queries_per_s" in r else "-"
        print(f"{r['name']:<18}{r['search_params']:<24}{r['recall_at_20']:>6.3f}"
              f"{r['queries_per_s']:>7.0f}{cold:>9}{r['rows_per_query']:>7.0f}"
              f"{r['bytes_read_per_query'] / 1e3:>6.0f}{r['search_rss_anon_growth_MB']:>8.0f}"
              f"{r['search_rss_file_MB']:>8.0f}{r['build_s']:>8.0f}"
              f"{r['build_bound_MB']:>7.0f}/{r['build_peak_growth_MB']:<6.0f}"
              f"{r['wikipedia_ram_GB']:>11.2f}{r['wikipedia_disk_GB']:>12.1f}"
              f"{r['wikipedia_random_reads_per_s']:>12,.0f}")
    print("(anon MB: growth of the search process's RssAnon from before loading the index; "
          "file MB: its RssFile, mapped file pages incl. libraries; 21M RAM: the candidate "
          f"index's bytes per passage x 21,015,324 + {WIKIPEDIA_NLIST:,} centroids; 21M reads/s: "
          "random 4 KiB page reads per second at the measured q/s with a cold page cache)")


def real_corpus_check(settings: tuple[str, ...] = ("nprobe=8,shortlist=256",
                                                  "nprobe=16,shortlist=256",
                                                  "nprobe=32,shortlist=256",
                                                  "nprobe=64,shortlist=256"),
                      factory: str = "IVF64,PQ32x4fs,DiskRefine(int8)") -> dict:
    """Flat vs ``DiskRefine`` on the bundled corpus (shipped default-encoder vectors) with the
    bundled PopQA questions: recall@20 against flat and the share of questions with a passage
    containing a gold answer (PopQA's ``match``) among the top 20, per search setting."""
    from selfrag.evaluation.metrics import match
    from selfrag.io import read_records
    from selfrag.retrieval.demo_index import shipped_paths
    from selfrag.retrieval.disk_build import build_disk_index
    from selfrag.retrieval.embeddings import EmbeddingShard
    from selfrag.retrieval.encoder import DEFAULT_ENCODER, Encoder
    from selfrag.retrieval.index import build_from_shards
    from selfrag.retrieval.passages import load_passages

    corpus = ROOT / "eval_data" / "corpus" / "corpus.jsonl"
    vectors_path, record_path = shipped_paths(corpus, DEFAULT_ENCODER)
    record = json.loads(record_path.read_text())
    vectors = np.load(vectors_path).astype(np.float32)
    passages = {p["id"]: p for p in load_passages(corpus)}
    items = [r for _, r in read_records(ROOT / "eval_data" / "popqa_longtail_w_gs.head100.jsonl")]
    encoder = Encoder.load(DEFAULT_ENCODER, device="cpu", fp16=False)
    queries = encoder.encode([r["question"] for r in items], 64, 512)

    def answer_in_top(hits: list[list[str]]) -> float:
        return float(np.mean([any(match(passages[pid]["text"], item["answers"]) for pid in found)
                              for found, item in zip(hits, items)]))

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "corpus.npy"
        np.save(path, vectors)
        shard = EmbeddingShard(path, [str(i) for i in record["ids"]],
                               np.load(path, mmap_mode="r"), {})
        flat_hits = build_from_shards([shard], "Flat").search(queries, K)[1]
        disk = build_disk_index([shard], Path(tmp) / "disk", factory)
        rows = []
        for setting in settings:
            disk.set_search_params(setting)
            hits = disk.search(queries, K)[1]
            rows.append({"search_params": setting, "answer_in_top20": answer_in_top(hits),
                         "recall_at_20_vs_flat": float(np.mean([
                             len(set(a) & set(b)) / K for a, b in zip(hits, flat_hits)]))})
    return {"passages": len(shard.ids), "questions": len(items), "factory": factory,
            "flat_answer_in_top20": answer_in_top(flat_hits), "settings": rows}
