"""The offline demo index: built once into the cache (from the shipped vectors), then reused."""

import json
import logging

import numpy as np
import pytest

from selfrag.retrieval.demo_index import DEMO_CORPUS, demo_index_dir, load_demo_retriever
from selfrag.retrieval.passages import passage_text


def test_demo_retriever_builds_once_then_reuses_the_cached_index(tiny_bert_path, small_corpus,
                                                                 tmp_path):
    cache = tmp_path / "cache"
    retriever = load_demo_retriever(small_corpus, tiny_bert_path, cache)
    (docs,) = retriever.search_batch(["What is Henry Feilden's occupation?"], 3)
    assert len(docs) == 3 and all(isinstance(d["score"], float) for d in docs)
    meta = demo_index_dir(small_corpus, tiny_bert_path, cache) / "index" / "meta.json"
    stamp = meta.stat().st_mtime_ns
    again = load_demo_retriever(small_corpus, tiny_bert_path, cache)
    assert meta.stat().st_mtime_ns == stamp
    assert again.search_batch(["What is Henry Feilden's occupation?"], 3)[0] == docs


def test_bundled_demo_corpus_is_present_with_its_sources():
    assert DEMO_CORPUS.is_file() and (DEMO_CORPUS.parent / "SOURCES.md").is_file()
    assert sum(1 for _ in DEMO_CORPUS.open(encoding="utf-8")) == 9340


# -- the embeddings shipped beside the corpus -------------------------------------------------
def _no_embedding(*args, **kwargs):
    raise AssertionError("the corpus was embedded although matching vectors ship beside it")


def test_the_bundled_corpus_ships_vectors_that_pass_every_check(minilm):
    from selfrag.retrieval.demo_index import shipped_vectors
    from selfrag.retrieval.passages import load_passages

    passages = load_passages(DEMO_CORPUS)
    vectors = shipped_vectors(DEMO_CORPUS, passages, minilm)
    assert vectors is not None and vectors.shape == (9340, 384) and vectors.dtype == np.float32
    fresh = minilm.encode([passage_text(passages[7])])[0]
    assert float(fresh @ vectors[7]) > 0.999  # unit vectors: the cosine


def test_shipped_vectors_build_the_index_without_embedding(tiny_bert_path, small_corpus,
                                                          tmp_path, monkeypatch):
    from selfrag.retrieval import demo_index as demo

    npy = demo.ship_vectors(small_corpus, tiny_bert_path, tmp_path / "build")
    assert npy.parent == small_corpus.parent and np.load(npy).dtype == np.float16
    embedded = load_demo_retriever(small_corpus, tiny_bert_path, tmp_path / "build")
    monkeypatch.setattr(demo, "generate_shard", _no_embedding)
    shipped = load_demo_retriever(small_corpus, tiny_bert_path, tmp_path / "fresh")
    query = ["What is Henry Feilden's occupation?"]
    assert ([d["id"] for d in shipped.search_batch(query, 5)[0]]
            == [d["id"] for d in embedded.search_batch(query, 5)[0]])


@pytest.mark.parametrize("change", ["corpus", "ids", "weights", "vectors"])
def test_shipped_vectors_are_refused_when_anything_differs(tiny_bert_path, tiny_encoder,
                                                           small_corpus, tmp_path, caplog, change):
    from selfrag.retrieval import demo_index as demo
    from selfrag.retrieval.passages import load_passages

    npy = demo.ship_vectors(small_corpus, tiny_bert_path, tmp_path / "build")
    record_path = npy.with_suffix(".json")
    record = json.loads(record_path.read_text())
    if change == "corpus":  # an edited passage
        small_corpus.write_text(small_corpus.read_text().replace("Feilden", "Fielden", 1))
    elif change == "ids":
        record["ids"][0], record["ids"][1] = record["ids"][1], record["ids"][0]
    elif change == "weights":
        record["encoder_weights_sha256"] = "0" * 64
    else:  # vectors that are not this encoder's (a spot-checked row among them)
        np.save(npy, -np.load(npy), allow_pickle=False)
    record_path.write_text(json.dumps(record))
    with caplog.at_level(logging.WARNING):
        assert demo.shipped_vectors(small_corpus, load_passages(small_corpus), tiny_encoder) is None
    assert "embedding the corpus instead" in caplog.text
