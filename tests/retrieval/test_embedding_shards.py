"""Sharded, resumable passage embeddings (.npy + .json) and their bad-input errors."""

import json
import os
import pickle
import stat

import numpy as np
import pytest

from selfrag.errors import InputError, SelfRagError
from selfrag.retrieval.embeddings import generate_shard, read_shards, shard_bounds
from selfrag.retrieval.passages import load_passages


@pytest.mark.parametrize("n, shards, expected", [
    (10, 3, [(0, 3), (3, 6), (6, 10)]),   # last shard takes the rest (as the original)
    (9, 3, [(0, 3), (3, 6), (6, 9)]),
    (2, 4, [(0, 0), (0, 0), (0, 0), (0, 2)]),
    (5, 1, [(0, 5)]),
])
def test_shard_bounds_follow_the_original_slicing(n, shards, expected):
    assert [shard_bounds(n, s, shards) for s in range(shards)] == expected


def test_shard_bounds_rejects_bad_shard_id():
    with pytest.raises(SelfRagError, match="shard_id"):
        shard_bounds(10, 3, 3)


class CountingEncoder:
    """Wraps an encoder and counts the texts it embeds."""

    def __init__(self, encoder):
        self.inner, self.texts = encoder, 0
        self.name, self.dim = encoder.name, encoder.dim
        self.pooling, self.normalize = encoder.pooling, encoder.normalize

    def encode(self, texts, *args, **kwargs):
        self.texts += len(texts)
        return self.inner.encode(texts, *args, **kwargs)


def test_shards_round_trip_and_concatenate_to_the_whole_corpus(tiny_encoder, small_corpus, tmp_path):
    passages = load_passages(small_corpus)
    out = tmp_path / "emb"
    for s in range(3):
        generate_shard(passages, tiny_encoder, out, shard_id=s, num_shards=3, batch_size=16)
    shards = list(read_shards(str(out / "passages_*")))
    assert [s.path.name for s in shards] == ["passages_00.npy", "passages_01.npy",
                                             "passages_02.npy"]
    assert [i for s in shards for i in s.ids] == [p["id"] for p in passages]
    whole = np.concatenate([s.vectors for s in shards])
    direct = tiny_encoder.encode([f"{p['title']} {p['text']}" if p["title"] else p["text"]
                                  for p in passages[:5]])
    np.testing.assert_allclose(whole[:5], direct, rtol=1e-4, atol=1e-5)
    assert not list(out.glob(".*"))  # no partial, temp or lock file


def test_shards_get_the_usual_file_mode_and_leave_no_lock_file(tiny_encoder, small_corpus,
                                                                tmp_path):
    # issue 12 item 13: the .npy was 0600 (mkstemp) and .passages_00.lock stayed behind
    old = os.umask(0o022)
    try:
        generate_shard(load_passages(small_corpus), tiny_encoder, tmp_path / "emb")
    finally:
        os.umask(old)
    names = sorted(p.name for p in (tmp_path / "emb").iterdir())
    assert names == ["passages_00.json", "passages_00.npy"]
    for name in names:
        assert stat.S_IMODE((tmp_path / "emb" / name).stat().st_mode) == 0o644, name


def test_generation_resumes_from_saved_blocks_and_skips_finished_shards(
        tiny_encoder, small_corpus, tmp_path, monkeypatch):
    passages = load_passages(small_corpus)
    counting = CountingEncoder(tiny_encoder)
    out = tmp_path / "emb"
    calls = {"n": 0}
    real_encode = counting.encode

    def crash_on_third_block(texts, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_encode(texts, *args, **kwargs)

    monkeypatch.setattr(counting, "encode", crash_on_third_block)
    with pytest.raises(KeyboardInterrupt):
        generate_shard(passages, counting, out, checkpoint_every=10)
    assert counting.texts == 20 and not (out / "passages_00.json").exists()
    monkeypatch.setattr(counting, "encode", real_encode)
    generate_shard(passages, counting, out, checkpoint_every=10)
    assert counting.texts == 40  # only the 20 unfinished passages were embedded again
    generate_shard(passages, counting, out, checkpoint_every=10)
    assert counting.texts == 40  # finished shard skipped
    (shard,) = read_shards(str(out / "passages_*"))
    assert shard.vectors.shape == (40, tiny_encoder.dim)


def test_finished_shard_with_other_settings_is_refused(tiny_encoder, small_corpus, tmp_path):
    passages = load_passages(small_corpus)
    generate_shard(passages, tiny_encoder, tmp_path)
    with pytest.raises(SelfRagError, match="different settings"):
        generate_shard(passages, tiny_encoder, tmp_path, lowercase=True)


def test_a_finished_shard_of_an_edited_corpus_is_refused(tiny_encoder, small_corpus, tmp_path):
    # issue 12 item 1: same number of passages, other text: the old shard was kept silently
    passages = load_passages(small_corpus)
    generate_shard(passages, tiny_encoder, tmp_path)
    edited = [{**p, "text": p["text"] + " (edited)"} if i == 3 else p
              for i, p in enumerate(passages)]
    with pytest.raises(SelfRagError, match="different settings"):
        generate_shard(edited, tiny_encoder, tmp_path)
    generate_shard(passages, tiny_encoder, tmp_path)  # the same corpus: skipped


def _write_shard(folder, name, ids, vectors, **meta):
    folder.mkdir(exist_ok=True)
    np.save(folder / f"{name}.npy", vectors)
    (folder / f"{name}.json").write_text(json.dumps({"ids": ids, **meta}))


def test_count_mismatch_between_ids_and_vectors(tmp_path):
    _write_shard(tmp_path, "p_00", ["a", "b", "c"], np.zeros((2, 4), np.float32))
    with pytest.raises(InputError, match=r"p_00\.json: field 'ids': 3 ids but 2 embedding rows"):
        list(read_shards(str(tmp_path / "p_*")))


def test_dimension_mismatch_between_shards(tmp_path):
    _write_shard(tmp_path, "p_00", ["a"], np.zeros((1, 4), np.float32))
    _write_shard(tmp_path, "p_01", ["b"], np.zeros((1, 8), np.float32))
    with pytest.raises(InputError, match=r"p_01\.npy: field 'dim': embedding dimension 8"):
        list(read_shards(str(tmp_path / "p_*")))


def test_missing_shard_of_a_set_is_named(tmp_path):
    for s in (0, 2):
        _write_shard(tmp_path, f"p_{s:02d}", [str(s)], np.zeros((1, 4), np.float32),
                     shard_id=s, num_shards=3)
    with pytest.raises(InputError, match="missing or unfinished: p_01"):
        list(read_shards(str(tmp_path / "p_*")))


def test_unfinished_shard_without_sidecar(tmp_path):
    np.save(tmp_path / "p_00.npy", np.zeros((1, 4), np.float32))
    with pytest.raises(InputError, match=r"p_00\.json: shard is unfinished"):
        list(read_shards(str(tmp_path / "p_*")))


def test_no_match(tmp_path):
    with pytest.raises(SelfRagError, match="no embedding shards match"):
        list(read_shards(str(tmp_path / "nothing_*")))


def test_original_pickle_shards_need_the_explicit_opt_in(tmp_path):
    with open(tmp_path / "passages_00", "wb") as handle:
        pickle.dump((["1", "2"], np.ones((2, 4), np.float32)), handle)
    with pytest.raises(SelfRagError, match="--allow_pickle_embeddings"):
        list(read_shards(str(tmp_path / "passages_*")))
    (shard,) = read_shards(str(tmp_path / "passages_*"), allow_pickle=True)
    assert shard.ids == ["1", "2"] and shard.vectors.shape == (2, 4)
