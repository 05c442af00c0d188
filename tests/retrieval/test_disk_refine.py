"""DiskRefine indexes: codes in RAM find candidates, vectors on disk re-rank them exactly.

Checked here: the int8/fp16 storages against hand-computed numbers, the re-ranking, the
build's equivalence with exact search when every vector is a candidate, the shortlist and
nprobe parameters, load-time checks, the resumable build, and the entry points' flags.
"""

import importlib.util
import json
import logging
from pathlib import Path

import numpy as np
import pytest

from selfrag.errors import InputError, SelfRagError
from selfrag.retrieval import disk_build
from selfrag.retrieval.disk_build import build_disk_index
from selfrag.retrieval.disk_vectors import (
    DiskVectors, VectorWriter, quantize_int8, rerank, split_disk_refine)
from selfrag.retrieval.embeddings import EmbeddingShard
from selfrag.retrieval.index import PassageIndex, build_from_shards

REPO = Path(__file__).resolve().parents[2]
FACTORY = "IVF8,PQ4x4fs,DiskRefine({})"


def _shards(folder: Path, n_shards: int = 2, rows: int = 600, dim: int = 16,
            seed: int = 0) -> list[EmbeddingShard]:
    """Clustered vectors (32 centres) in ``n_shards`` memory-mapped .npy shards."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((32, dim)).astype(np.float32)
    shards = []
    for s in range(n_shards):
        vectors = (centres[rng.integers(0, 32, rows)]
                   + 0.3 * rng.standard_normal((rows, dim))).astype(np.float32)
        path = folder / f"passages_{s:02d}.npy"
        np.save(path, vectors)
        shards.append(EmbeddingShard(path, [str(s * rows + i) for i in range(rows)],
                                     np.load(path, mmap_mode="r"), {}))
    return shards


def _queries(n: int = 12, dim: int = 16) -> np.ndarray:
    return np.random.default_rng(1).standard_normal((n, dim)).astype(np.float32)


def test_the_factory_suffix_names_the_storage():
    assert split_disk_refine("IVF8,PQ4x4fs,DiskRefine(int8)") == ("IVF8,PQ4x4fs", "int8")
    assert split_disk_refine("IVF8,PQ4x4fs, DiskRefine( fp16 )") == ("IVF8,PQ4x4fs", "fp16")
    assert split_disk_refine("IVF8,Flat") == ("IVF8,Flat", None)
    with pytest.raises(SelfRagError, match="unknown on-disk vector storage 'int4'"):
        split_disk_refine("IVF8,PQ4,DiskRefine(int4)")
    with pytest.raises(SelfRagError, match="must end the factory string"):
        split_disk_refine("DiskRefine(int8),IVF8,PQ4")


def test_int8_rows_keep_one_scale_each():
    codes, scales = quantize_int8(np.array([[2.0, -4.0, 1.0], [0.0, 0.0, 0.0]]))
    # scale 4/127; 2 / (4/127) = 63.5 rounds to the even 64; 1 / (4/127) = 31.75 -> 32
    np.testing.assert_allclose(scales, [4 / 127, 1.0], rtol=1e-7)
    assert codes.tolist() == [[64, -127, 32], [0, 0, 0]]
    assert codes.dtype == np.int8
    error = np.abs(codes[0] * scales[0] - [2.0, -4.0, 1.0])
    assert error.max() <= scales[0] / 2 + 1e-7


@pytest.mark.parametrize("storage", ["fp16", "int8"])
def test_rerank_orders_candidates_by_stored_inner_products(tmp_path, storage):
    vectors = np.array([[1, 0], [0, 1], [1, 1], [-1, 2], [3, 3]], dtype=np.float32)
    VectorWriter(tmp_path, storage, 5, 2).write(0, vectors)
    disk = DiskVectors(tmp_path, storage, 5, 2)
    query = np.array([[2.0, 1.0]], dtype=np.float32)
    # candidates 0..3 score 2, 1, 3, 0 (row 4, 9, is not a candidate); -1 = no candidate
    scores, rows = rerank(disk, query, np.array([[0, 1, 2, 3, -1]]), k=2)
    assert rows.tolist() == [[2, 0]]
    np.testing.assert_allclose(scores, [[3.0, 2.0]], atol=0 if storage == "fp16" else 1e-6)
    assert disk.rows_read == 4
    scores, rows = rerank(disk, query, np.array([[3, -1, -1]]), k=3)
    assert rows.tolist() == [[3, -1, -1]]
    assert scores[0, 1:].tolist() == [-np.inf, -np.inf]
    # [-1, 2] in int8: scale 2/127, -1 -> -63.5 -> -64 -> -1.00787: score -0.01575
    np.testing.assert_allclose(scores[0, 0], 0.0 if storage == "fp16" else 2 * (1 - 64 * 2 / 127),
                               atol=1e-6)


def test_writer_refuses_rows_outside_the_file(tmp_path):
    writer = VectorWriter(tmp_path, "int8", 4, 3)
    with pytest.raises(SelfRagError, match="do not fit a \\[4, 3\\] file"):
        writer.write(3, np.ones((2, 3)))
    with pytest.raises(SelfRagError, match="unknown on-disk vector storage"):
        VectorWriter(tmp_path, "bf16", 4, 3)


@pytest.mark.parametrize("storage", ["fp16", "int8"])
def test_with_every_vector_a_candidate_it_is_exact_search(tmp_path, storage):
    shards = _shards(tmp_path)
    flat = build_from_shards(shards, "Flat")
    index = build_disk_index(shards, tmp_path / "index", FACTORY.format(storage),
                             chunk_size=250, train_size=1000,
                             search_params="nprobe=8,shortlist=1200")
    queries = _queries()
    flat_scores, flat_hits = flat.search(queries, 10)
    scores, hits = index.search(queries, 10)
    # the same top 10 up to the storage's rounding: every passage returned scores at least the
    # true 10th score less that rounding, and its score is off by at most the rounding (fp16:
    # 2^-11 of each |x_j q_j|; int8: half the row's scale times ||q||_1, module docstring)
    everything = np.concatenate([np.asarray(s.vectors) for s in shards])
    for q, (found, exact, got) in enumerate(zip(hits, flat_scores, scores)):
        rows = everything[[int(i) for i in found]]
        if storage == "fp16":
            rounding = np.abs(rows) @ np.abs(queries[q]) * 2.0 ** -11
        else:
            rounding = np.abs(rows).max(axis=1) / 127 / 2 * np.abs(queries[q]).sum()
        true = rows @ queries[q]
        assert np.all(true >= exact[-1] - 2 * rounding.max())
        assert np.all(np.abs(got - true) <= rounding + 1e-5)
        assert np.all(np.diff(got) <= 0)
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(hits, flat_hits)]) >= 0.95
    assert index.disk.rows_read == len(queries) * 1200
    names = {p.name for p in (tmp_path / "index").iterdir()}
    assert names == {"index.faiss", "ids.npy", "meta.json", "vectors.npy"} | (
        {"scales.npy"} if storage == "int8" else set())
    meta = json.loads((tmp_path / "index" / "meta.json").read_text())
    assert meta["disk_refine"] == {"storage": storage, "shortlist": 1200}
    assert meta["count"] == 1200
    assert not list(tmp_path.glob(".index.*"))  # the build folder was moved into place
    reloaded = PassageIndex.load(tmp_path / "index")
    assert reloaded.search(queries, 10)[1] == hits


def test_shortlist_and_nprobe_are_search_parameters(tmp_path):
    index = build_disk_index(_shards(tmp_path), tmp_path / "index", FACTORY.format("int8"),
                             train_size=1000)
    queries = _queries(4)
    index.set_search_params("nprobe=8,shortlist=30")
    index.search(queries, 5)
    assert index.disk.rows_read == 4 * 30
    index.disk.rows_read = 0
    index.search(queries, 50)  # never fewer candidates than asked for
    assert index.disk.rows_read == 4 * 50
    assert PassageIndex.load(tmp_path / "index", search_params="nprobe=2,shortlist=7") \
        .meta["disk_refine"]["shortlist"] == 7
    with pytest.raises(SelfRagError, match="shortlist must be a positive integer"):
        index.set_search_params("nprobe=4,shortlist=0")
    flat = build_from_shards(_shards(tmp_path / "..", 1, 50), "Flat")
    with pytest.raises(SelfRagError, match="needs a DiskRefine index"):
        flat.set_search_params("shortlist=10")


def test_a_disk_index_is_built_in_its_folder_only(tmp_path):
    shards = _shards(tmp_path, 1, 100)
    with pytest.raises(SelfRagError, match="build it in its folder with build_disk_index"):
        build_from_shards(shards, FACTORY.format("fp16"))
    index = build_disk_index(shards, tmp_path / "index", "IVF2,PQ4x4fs,DiskRefine(fp16)")
    with pytest.raises(SelfRagError, match="cannot be saved elsewhere"):
        index.save(tmp_path / "elsewhere")
    with pytest.raises(SelfRagError, match="not a DiskRefine factory"):
        build_disk_index(shards, tmp_path / "other", "IVF2,PQ4x4fs")


def test_load_names_the_broken_file(tmp_path):
    build_disk_index(_shards(tmp_path, 1, 100), tmp_path / "index",
                     "IVF2,PQ4x4fs,DiskRefine(int8)")
    folder = tmp_path / "index"
    scales = (folder / "scales.npy").read_bytes()
    (folder / "scales.npy").unlink()
    with pytest.raises(InputError, match="scales.npy.*on-disk vectors of the index are missing"):
        PassageIndex.load(folder)
    np.save(folder / "scales.npy", np.ones(99, dtype=np.float32))
    with pytest.raises(InputError, match=r"scales.npy.*holds float32 \(99,\); the index needs"):
        PassageIndex.load(folder)
    (folder / "scales.npy").write_bytes(scales)
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps({**meta, "disk_refine": {"storage": "int4"}}))
    with pytest.raises(InputError, match="disk_refine must be"):
        PassageIndex.load(folder)


class Crash(Exception):
    pass


def test_an_interrupted_build_resumes_where_it_stopped(tmp_path, monkeypatch):
    shards = _shards(tmp_path)  # 2 shards x 600 rows, blocks of 250: 3 blocks per shard
    kwargs = {"chunk_size": 250, "train_size": 1000, "search_params": "nprobe=4,shortlist=40"}
    reference = build_disk_index(shards, tmp_path / "reference", FACTORY.format("int8"),
                                 **kwargs)
    checkpoint, saves = disk_build._checkpoint, []

    def crash_on_fourth(index, work):  # after training and 2 blocks are saved
        if len(saves) == 3:
            raise Crash
        saves.append(len(index))
        checkpoint(index, work)

    monkeypatch.setattr(disk_build, "_checkpoint", crash_on_fourth)
    with pytest.raises(Crash):
        build_disk_index(shards, tmp_path / "index", FACTORY.format("int8"), **kwargs)
    assert saves == [0, 250, 500]
    assert not (tmp_path / "index").exists()
    monkeypatch.setattr(disk_build, "_checkpoint", checkpoint)
    written, write = [], VectorWriter.write
    monkeypatch.setattr(VectorWriter, "write",
                        lambda self, start, vectors: (written.append((start, len(vectors))),
                                                      write(self, start, vectors)))
    index = build_disk_index(shards, tmp_path / "index", FACTORY.format("int8"), **kwargs)
    # the third block of the first shard was written but not saved in the index: redone
    assert written == [(500, 100), (600, 250), (850, 250), (1100, 100)]
    queries = _queries()
    assert index.search(queries, 10)[1] == reference.search(queries, 10)[1]
    for name in ("vectors.npy", "scales.npy", "ids.npy"):
        assert (tmp_path / "index" / name).read_bytes() == \
            (tmp_path / "reference" / name).read_bytes()


def test_a_build_with_other_settings_starts_afresh(tmp_path, monkeypatch, caplog):
    shards = _shards(tmp_path)

    def crash(index, work):
        raise Crash

    checkpoint = disk_build._checkpoint
    monkeypatch.setattr(disk_build, "_checkpoint",
                        lambda index, work: crash(index, work) if len(index) else
                        checkpoint(index, work))
    with pytest.raises(Crash):
        build_disk_index(shards, tmp_path / "index", FACTORY.format("fp16"), train_size=1000)
    monkeypatch.setattr(disk_build, "_checkpoint", checkpoint)
    index = build_disk_index(shards, tmp_path / "index", FACTORY.format("fp16"), train_size=900)
    assert "starting afresh" in caplog.text
    assert len(index) == 1200


def test_the_build_stays_within_its_printed_memory_bound(tmp_path):
    """Peak resident memory of a build over 307 MB of vectors, in a fresh process."""
    import subprocess
    import sys

    path = tmp_path / "shard.npy"  # written here: the build's process only reads it
    out = np.lib.format.open_memmap(path, "w+", np.float32, (300_000, 256))
    rng = np.random.default_rng(0)
    for start in range(0, 300_000, 50_000):
        out[start:start + 50_000] = rng.standard_normal((50_000, 256), dtype=np.float32)
    out.flush()
    del out
    script = f"""
import sys, numpy as np
sys.path.insert(0, {str(REPO)!r})
from pathlib import Path
from selfrag.retrieval.embeddings import EmbeddingShard
from selfrag.retrieval.disk_build import build_disk_index, memory_bound
def status():
    return {{k: int(v.split()[0]) * 1024 for k, _, v in
             (l.partition(":") for l in open("/proc/self/status")) if k in ("VmRSS", "VmHWM")}}
before = status()["VmRSS"]
path = Path({str(path)!r})
shard = EmbeddingShard(path, [str(i) for i in range(300_000)], np.load(path, mmap_mode="r"), {{}})
build_disk_index([shard], path.parent / "index", "IVF64,PQ16x4fs,DiskRefine(int8)",
                 chunk_size=30_000, train_size=20_000)
bound = memory_bound(300_000, 256, 8, 20_000, [shard.ids])
print(status()["VmHWM"] - before, bound["total"])
"""
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    peak, bound = map(int, run.stdout.split()[-2:])
    assert peak <= bound, (peak, bound)
    assert bound < 300_000 * 256 * 4  # less than the vectors: they were never all in memory


def _script(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "retrieval_lm" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_passage_retrieval_builds_then_reloads_a_disk_index(tiny_bert_path, small_corpus,
                                                            tmp_path, capsys, caplog):
    caplog.set_level(logging.INFO)
    assert _script("generate_passage_embeddings").main([
        "--passages", str(small_corpus), "--output_dir", str(tmp_path / "emb"),
        "--model_name_or_path", tiny_bert_path]) == 0
    common = ["--passages", str(small_corpus), "--passages_embeddings",
              str(tmp_path / "emb" / "*"), "--model_name_or_path", tiny_bert_path,
              "--query", "Who was Henry Feilden?", "--n_docs", "5"]
    retrieval = _script("passage_retrieval")
    capsys.readouterr()
    assert retrieval.main(common) == 0
    flat = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    disk = ["--index_factory", "IVF2,PQ4x4fs,DiskRefine(fp16)",
            "--search_params", "nprobe=2,shortlist=40"]
    assert retrieval.main(common + disk) == 0
    found = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["id"] for d in found] == [d["id"] for d in flat]
    folder = tmp_path / "emb" / "index_IVF2-PQ4x4fs-DiskRefine-fp16"
    assert (folder / "vectors.npy").is_file()  # kept without --save_or_load_index
    caplog.clear()
    assert retrieval.main(common + disk) == 0
    assert "loading index from" in caplog.text
    assert [json.loads(line)["id"] for line in capsys.readouterr().out.splitlines()] == \
        [d["id"] for d in flat]


def test_the_inference_scripts_retriever_flags_select_a_disk_index(tiny_bert_path, small_corpus,
                                                                   tmp_path):
    import argparse

    from selfrag import cli

    assert _script("generate_passage_embeddings").main([
        "--passages", str(small_corpus), "--output_dir", str(tmp_path / "emb"),
        "--model_name_or_path", tiny_bert_path]) == 0
    parser = argparse.ArgumentParser()
    cli.add_retriever_flags(parser)
    args = parser.parse_args([
        "--passages", str(small_corpus), "--passages_embeddings", str(tmp_path / "emb" / "*"),
        "--retriever_model", tiny_bert_path,
        "--index_factory", "IVF2,PQ4x4fs,DiskRefine(int8)",
        "--search_params", "nprobe=2,shortlist=40"])
    retriever = cli.build_retriever(args)
    assert retriever.index.meta["disk_refine"] == {"storage": "int8", "shortlist": 40}
    docs = retriever.search_batch(["Who was Henry Feilden?"], 3)[0]
    assert len(docs) == 3 and retriever.index.disk.rows_read == 40
    default = cli.build_retriever(parser.parse_args([
        "--passages", str(small_corpus), "--passages_embeddings", str(tmp_path / "emb" / "*"),
        "--retriever_model", tiny_bert_path]))
    assert default.index.meta["factory"] == "Flat" and default.index.disk is None


def test_measured_defaults_apply_when_no_search_parameters_are_given(tmp_path):
    from selfrag.retrieval.index import DEFAULT_NPROBE, DEFAULT_SHORTLIST

    index = build_disk_index(_shards(tmp_path, 1, 200), tmp_path / "index",
                             "IVF4,PQ4x4fs,DiskRefine(int8)")
    assert index.meta["search_params"] == f"nprobe={DEFAULT_NPROBE}"
    assert index.meta["disk_refine"]["shortlist"] == DEFAULT_SHORTLIST
    import faiss

    assert faiss.extract_index_ivf(index.index).nprobe == DEFAULT_NPROBE


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_shard_rows_reads_what_the_mapping_holds(tmp_path, dtype):
    from selfrag.retrieval.index import shard_rows

    vectors = np.arange(5 * 3, dtype=dtype).reshape(5, 3)
    np.save(tmp_path / "s.npy", vectors)
    shard = EmbeddingShard(tmp_path / "s.npy", list("abcde"),
                           np.load(tmp_path / "s.npy", mmap_mode="r"), {})
    block = shard_rows(shard, 1, 9)  # the end is clipped to the shard
    assert block.dtype == np.float32 and block.tolist() == vectors[1:].tolist()
    assert shard_rows(shard, np.array([4, 0, 4])).tolist() == vectors[[4, 0, 4]].tolist()
    assert shard_rows(shard, 5, 7).shape == (0, 3)
    (tmp_path / "s.npy").write_bytes((tmp_path / "s.npy").read_bytes()[:-6])  # truncated
    with pytest.raises(InputError, match="shorter than its .npy header says"):
        shard_rows(shard, 0, 5)
