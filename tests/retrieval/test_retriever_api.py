"""The original Retriever API (README demo calls), the batch API, and index save/load through it."""

import numpy as np
import pytest

from selfrag.errors import InputError, SelfRagError
from selfrag.retrieval.embeddings import generate_shard
from selfrag.retrieval.passages import load_passages
from selfrag.retrieval.retriever import Retriever, index_folder


@pytest.fixture()
def embedded(tiny_encoder, small_corpus, tmp_path):
    """The small corpus embedded with the tiny encoder in two shards."""
    passages = load_passages(small_corpus)
    for s in range(2):
        generate_shard(passages, tiny_encoder, tmp_path / "emb", shard_id=s, num_shards=2)
    return small_corpus, str(tmp_path / "emb" / "*")


def test_readme_demo_calls_return_passages_with_scores(tiny_bert_path, embedded):
    corpus, glob = embedded
    retriever = Retriever({})
    retriever.setup_retriever_demo(tiny_bert_path, str(corpus), glob, n_docs=5,
                                   save_or_load_index=False)
    docs = retriever.search_document_demo("What is Henry Feilden's occupation?", 5)
    assert len(docs) == 5 and set(docs[0]) == {"id", "title", "text", "score"}
    scores = [d["score"] for d in docs]
    assert scores == sorted(scores, reverse=True)
    passages = {p["id"]: p for p in load_passages(corpus)}
    q = retriever.encoder.encode(["What is Henry Feilden's occupation?"])[0]
    top = passages[docs[0]["id"]]
    p = retriever.encoder.encode([top["title"] + " " + top["text"]])[0]
    assert docs[0]["score"] == pytest.approx(float(q @ p), rel=1e-4)  # inner product


def test_search_batch_equals_one_by_one_search(tiny_bert_path, embedded):
    corpus, glob = embedded
    retriever = Retriever({"model_name_or_path": tiny_bert_path, "passages": str(corpus),
                           "passages_embeddings": glob, "n_docs": 4})
    retriever.setup_retriever()
    queries = ["Henry Feilden", "Edward Corser occupation", "Espinal"]
    batch = retriever.search_batch(queries, 4)
    assert [len(r) for r in batch] == [4, 4, 4]
    for query, docs in zip(queries, batch):
        single = retriever.search_document(query, top_n=2)
        assert [d["id"] for d in single] == [d["id"] for d in docs[:2]]
        np.testing.assert_allclose([d["score"] for d in single],
                                   [d["score"] for d in docs[:2]], rtol=1e-4)


def test_save_or_load_index_saves_once_then_loads(tiny_bert_path, embedded):
    corpus, glob = embedded
    args = {"model_name_or_path": tiny_bert_path, "passages": str(corpus),
            "passages_embeddings": glob, "save_or_load_index": True, "n_docs": 3}
    first = Retriever(args)
    first.setup_retriever()
    folder = index_folder(glob, "Flat")
    assert (folder / "meta.json").is_file()
    second = Retriever(args)
    second.setup_retriever()
    assert second.index.meta["encoder"]["name"] == tiny_bert_path
    assert second.search_document("Feilden") == first.search_document("Feilden")


def test_a_saved_index_of_other_shards_is_rebuilt_not_reused(tiny_bert_path, tiny_encoder,
                                                             embedded, tmp_path):
    # issue 12 item 1: regenerated embeddings kept being searched through the old saved index
    import json

    corpus, glob = embedded
    args = {"model_name_or_path": tiny_bert_path, "passages": str(corpus),
            "passages_embeddings": glob, "save_or_load_index": True, "n_docs": 3}
    Retriever(args).setup_retriever()
    passages = load_passages(corpus)
    renamed = [{**p, "id": f"new-{p['id']}"} for p in passages]
    corpus.write_text("".join(json.dumps(p) + "\n" for p in renamed))
    for shard in (tmp_path / "emb").glob("passages_*"):
        shard.unlink()  # regenerated; the saved index (emb/index_Flat) stays
    assert (tmp_path / "emb" / "index_Flat" / "meta.json").is_file()
    for s in range(2):
        generate_shard(renamed, tiny_encoder, tmp_path / "emb", shard_id=s, num_shards=2)
    again = Retriever(args)
    again.setup_retriever()
    assert all(d["id"].startswith("new-") for d in again.search_document("Feilden"))


def test_querying_embeddings_of_another_encoder_is_refused(minilm, embedded):
    corpus, glob = embedded
    retriever = Retriever({"passages": str(corpus), "passages_embeddings": glob})
    retriever.encoder = minilm
    with pytest.raises(InputError, match="field 'dim'.*384-d"):
        retriever.setup_retriever()


def test_search_before_setup_is_a_clear_error():
    with pytest.raises(SelfRagError, match="setup_retriever"):
        Retriever({}).search_batch(["q"], 3)
