"""The offline demo index: built once into the cache, then reused."""

from selfrag.retrieval.demo import DEMO_CORPUS, demo_index_dir, load_demo_retriever


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
