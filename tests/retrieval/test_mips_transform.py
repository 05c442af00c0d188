"""MIPS → L2 reduction: same ranking as inner product, saved/loaded and checked."""

import json

import numpy as np
import pytest

from selfrag.errors import InputError, SelfRagError
from selfrag.retrieval.embeddings import EmbeddingShard
from selfrag.retrieval.index import (
    PassageIndex,
    build_from_shards,
    max_norm,
    mips_database,
    mips_queries,
)

ENCODER = {"name": "enc-a", "dim": 16, "pooling": "average", "normalize": False}


def unnormalised(n: int, d: int = 16, seed: int = 0) -> np.ndarray:
    """Clustered vectors whose norms vary (0.5x to 2x), as mean-pooled embeddings do."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(size=(8, d))
    x = mu[rng.integers(0, 8, n)] + 0.5 * rng.normal(size=(n, d))
    return (x * rng.uniform(0.5, 2.0, size=(n, 1))).astype(np.float32)


def test_transform_makes_l2_ranking_equal_inner_product_ranking():
    data, queries = unnormalised(500), unnormalised(30, seed=1)
    m = max_norm(data, chunk_size=64)
    assert m == pytest.approx(np.linalg.norm(data, axis=1).max(), rel=1e-6)
    db, q = mips_database(data, m), mips_queries(queries)
    assert db.shape == (500, 17) and q.shape == (30, 17)
    np.testing.assert_allclose(np.linalg.norm(db, axis=1), m, rtol=1e-5)
    l2 = ((q[:, None, :].astype(np.float64) - db[None]) ** 2).sum(-1)
    ip = queries.astype(np.float64) @ data.T.astype(np.float64)
    assert (np.argsort(l2, axis=1, kind="stable") == np.argsort(-ip, axis=1, kind="stable")).all()


def test_flat_index_with_transform_equals_inner_product_flat():
    data, queries = unnormalised(400), unnormalised(20, seed=2)
    ids = [str(i) for i in range(len(data))]
    plain = PassageIndex.create(16, "Flat", ENCODER)
    plain.add(ids, data)
    mips = PassageIndex.create(16, "Flat", ENCODER, mips_max_norm=max_norm(data))
    mips.add(ids, data, chunk_size=33)
    assert mips.dim == 16 and mips.index.d == 17 and len(mips) == 400
    s_plain, h_plain = plain.search(queries, 10)
    s_mips, h_mips = mips.search(queries, 10, batch_size=7)
    assert h_mips == h_plain
    np.testing.assert_allclose(s_mips, s_plain, rtol=1e-4, atol=1e-3)
    brute = queries @ data.T
    assert h_mips == [[str(j) for j in row] for row in np.argsort(-brute, axis=1)[:, :10]]


def test_transform_round_trip_save_load(tmp_path):
    data, queries = unnormalised(300), unnormalised(5, seed=3)
    shard = EmbeddingShard(tmp_path / "p_00.npy", [str(i) for i in range(300)], data)
    index = build_from_shards([shard], "IVF4,Flat", ENCODER, search_params="nprobe=4",
                              train_size=300, mips_transform=True)
    assert index.meta["mips_transform"] is True
    assert index.meta["mips_max_norm"] == pytest.approx(np.linalg.norm(data, axis=1).max())
    index.save(tmp_path / "idx")
    meta = json.loads((tmp_path / "idx" / "meta.json").read_text())
    assert meta["mips_transform"] is True and meta["dim"] == 16
    loaded = PassageIndex.load(tmp_path / "idx", ENCODER)
    assert loaded.mips and loaded.dim == 16 and loaded.meta["search_params"] == "nprobe=4"
    s0, h0 = index.search(queries, 5)
    s1, h1 = loaded.search(queries, 5)
    assert h1 == h0 and np.array_equal(s0, s1)
    # nprobe = nlist: exact, so the same as brute-force inner product
    assert h1 == [[str(j) for j in row] for row in np.argsort(-(queries @ data.T), 1)[:, :5]]


def test_vectors_longer_than_the_maximum_norm_are_refused():
    data = unnormalised(10)
    index = PassageIndex.create(16, "Flat", mips_max_norm=float(np.linalg.norm(data[0])))
    with pytest.raises(SelfRagError, match="> mips_max_norm"):
        index.add([str(i) for i in range(10)], data * 1.01)
    with pytest.raises(SelfRagError, match="positive number"):
        PassageIndex.create(16, "Flat", mips_max_norm=0.0)


@pytest.mark.parametrize("change, field", [
    ({"mips_transform": False}, "dim"),        # an L2 (d+1) index read as a plain one
    ({"mips_max_norm": None}, "mips_max_norm"),
    ({"mips_transform": "yes"}, "mips_transform"),
    ({"dim": 17}, "dim"),
])
def test_inconsistent_transform_metadata_is_refused_on_load(tmp_path, change, field):
    data = unnormalised(5)
    index = PassageIndex.create(16, "Flat", ENCODER, mips_max_norm=max_norm(data))
    index.add([str(i) for i in range(5)], data)
    index.save(tmp_path / "idx")
    meta_path = tmp_path / "idx" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta.update(change)
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(InputError, match=f"field '{field}'"):
        PassageIndex.load(tmp_path / "idx")


def test_plain_inner_product_index_claiming_the_transform_is_refused(tmp_path):
    data = unnormalised(5, d=17)
    index = PassageIndex.create(17, "Flat", {**ENCODER, "dim": 17})
    index.add([str(i) for i in range(5)], data)
    index.save(tmp_path / "idx")
    meta_path = tmp_path / "idx" / "meta.json"
    meta = json.loads(meta_path.read_text())
    meta.update(mips_transform=True, mips_max_norm=3.0, dim=16)
    meta_path.write_text(json.dumps(meta))
    with pytest.raises(InputError, match="field 'mips_transform'.*L2"):
        PassageIndex.load(tmp_path / "idx")
