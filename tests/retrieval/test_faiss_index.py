"""faiss indexes: exact search = numpy brute force, compressed recall, save/load with metadata."""

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from selfrag.errors import InputError, SelfRagError
from selfrag.retrieval.embeddings import EmbeddingShard
from selfrag.retrieval.index import IdMap, PassageIndex, build_from_shards

ENCODER = {"name": "enc-a", "dim": 16, "pooling": "average", "normalize": False}


def clustered(n: int, d: int, centres: int = 20, seed: int = 0) -> np.ndarray:
    """Vectors around a few centres, like real embeddings (not uniform noise)."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=(centres, d)).astype(np.float32)
    return (mu[rng.integers(0, centres, n)] + 0.3 * rng.normal(size=(n, d))).astype(np.float32)


def flat_index(vectors, ids=None):
    index = PassageIndex.create(vectors.shape[1], "Flat", {**ENCODER, "dim": vectors.shape[1]})
    index.add(ids or [str(i) for i in range(len(vectors))], vectors, chunk_size=7)
    return index


def test_exact_search_equals_numpy_brute_force_inner_product():
    data, queries = clustered(300, 16), clustered(25, 16, seed=1)
    scores, hits = flat_index(data).search(queries, k=10, batch_size=4)
    brute = queries @ data.T
    expected = np.argsort(-brute, axis=1)[:, :10]
    assert hits == [[str(j) for j in row] for row in expected]
    np.testing.assert_allclose(scores, np.take_along_axis(brute, expected, 1), rtol=1e-5)


def test_k_larger_than_the_index_returns_all_rows():
    scores, hits = flat_index(clustered(3, 16)).search(clustered(1, 16, seed=2), k=10)
    assert scores.shape == (1, 3) and sorted(hits[0]) == ["0", "1", "2"]


@pytest.mark.parametrize("factory, params, min_recall", [
    ("IVF16,PQ8x4", "nprobe=8", 0.15),                  # compressed: 4 bytes per vector
    ("IVF16,PQ16x4,RFlat", "nprobe=16,k_factor_rf=16", 0.9),  # + exact re-ranking
    ("HNSW16", "efSearch=128", 0.9),
])
def test_compressed_index_recall_sanity_against_exact_search(factory, params, min_recall):
    data, queries = clustered(3000, 32, centres=50), clustered(50, 32, centres=50, seed=3)
    exact = flat_index(data).search(queries, 10)[1]
    shard = EmbeddingShard(Path("mem"), [str(i) for i in range(len(data))], data)
    approx = build_from_shards([shard], factory, {**ENCODER, "dim": 32}, search_params=params)
    got = approx.search(queries, 10)[1]
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(got, exact)])
    assert recall >= min_recall


@pytest.mark.parametrize("ids", [["10", "2", "33"], ["a", "007", "x-1"]])
def test_save_load_round_trip_keeps_ids_scores_and_metadata(tmp_path, ids):
    data = clustered(3, 16)
    index = flat_index(data, ids)
    index.save(tmp_path / "idx")
    loaded = PassageIndex.load(tmp_path / "idx", ENCODER)
    assert loaded.meta["encoder"] == ENCODER and len(loaded) == 3
    assert (tmp_path / "idx" / ("ids.npy" if ids[0] == "10" else "ids.json")).is_file()
    q = clustered(2, 16, seed=5)
    assert loaded.search(q, 3)[1] == index.search(q, 3)[1]
    index.save(tmp_path / "idx")  # overwriting a saved index is atomic and allowed
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_loading_with_another_encoder_is_refused(tmp_path):
    flat_index(clustered(3, 16)).save(tmp_path / "idx")
    with pytest.raises(InputError, match=r"meta\.json: field 'encoder\.name'.*enc-a"):
        PassageIndex.load(tmp_path / "idx", {**ENCODER, "name": "enc-b"})
    with pytest.raises(InputError, match="field 'encoder.dim'"):
        PassageIndex.load(tmp_path / "idx", {**ENCODER, "dim": 768})


def test_ids_and_vectors_count_mismatch_on_load(tmp_path):
    flat_index(clustered(3, 16)).save(tmp_path / "idx")
    np.save(tmp_path / "idx" / "ids.npy", np.arange(2))
    with pytest.raises(InputError, match="field 'count'"):
        PassageIndex.load(tmp_path / "idx")


def test_duplicate_ids_across_shards_are_refused(tmp_path):
    a = EmbeddingShard(Path("p_00.npy"), ["1", "2"], clustered(2, 16))
    b = EmbeddingShard(Path("p_01.npy"), ["3", "2"], clustered(2, 16))
    with pytest.raises(InputError, match=r"p_01\.npy: field 'ids': duplicate passage id '2'"):
        build_from_shards([a, b], "Flat", ENCODER)


def test_shard_from_another_encoder_or_dimension_is_refused():
    shard = EmbeddingShard(Path("p_00.npy"), ["1"], clustered(1, 16),
                           meta={"encoder": {**ENCODER, "name": "other"}})
    with pytest.raises(InputError, match="encoder name='other'"):
        build_from_shards([shard], "Flat", ENCODER)
    with pytest.raises(InputError, match="field 'dim'"):
        build_from_shards([shard], "Flat", {**ENCODER, "dim": 8})


def test_bad_factory_and_query_dimension_are_clear_errors():
    with pytest.raises(SelfRagError, match="faiss cannot build index 'NotAnIndex'"):
        PassageIndex.create(16, "NotAnIndex")
    with pytest.raises(SelfRagError, match="index dimension is 16"):
        flat_index(clustered(3, 16)).search(np.zeros((1, 8), np.float32), 1)


def test_id_map_switches_to_strings_when_needed():
    ids = IdMap(["1", "2"])
    ids.extend(["x"])
    assert [ids[i] for i in range(3)] == ["1", "2", "x"]


def test_a_saved_index_gets_the_usual_modes(tmp_path):
    # issue 12 item 13: the folder came from mkdtemp (0700)
    old = os.umask(0o022)
    try:
        flat_index(clustered(3, 16), ["a", "b", "c"]).save(tmp_path / "idx")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "idx").stat().st_mode) == 0o755
    for item in (tmp_path / "idx").iterdir():
        assert stat.S_IMODE(item.stat().st_mode) == 0o644, item.name
