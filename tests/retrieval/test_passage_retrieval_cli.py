"""The entry points on bundled data: --data batch mode, resume, and `error: ...` exits."""

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from selfrag.errors import SelfRagError
from selfrag.retrieval.embeddings import generate_shard
from selfrag.retrieval.file_retrieval import add_ctxs
from selfrag.retrieval.passages import load_passages
from selfrag.retrieval.retriever import Retriever

REPO = Path(__file__).resolve().parents[2]
POPQA = REPO / "eval_data" / "popqa_longtail_w_gs.head100.jsonl"


def _script(name):
    spec = importlib.util.spec_from_file_location(name, REPO / "retrieval_lm" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _questions(tmp_path, n=5):
    """The first PopQA long-tail questions (the demo corpus holds their Contriever ctxs)."""
    if not POPQA.is_file():
        pytest.skip("no bundled PopQA file")
    path = tmp_path / "popqa.jsonl"
    with POPQA.open(encoding="utf-8") as handle:
        items = [json.loads(line) for _, line in zip(range(n), handle)]
    path.write_text("".join(json.dumps({k: v for k, v in item.items() if k != "ctxs"}) + "\n"
                            for item in items), encoding="utf-8")
    return path


def test_data_mode_adds_ctxs_to_every_item_via_the_real_cli(tiny_bert_path, small_corpus,
                                                             tmp_path):
    questions = _questions(tmp_path)
    code = _script("generate_passage_embeddings").main([
        "--passages", str(small_corpus), "--output_dir", str(tmp_path / "emb"),
        "--model_name_or_path", tiny_bert_path, "--per_gpu_batch_size", "16"])
    assert code == 0
    run = subprocess.run(
        [sys.executable, "retrieval_lm/passage_retrieval.py", "--passages", str(small_corpus),
         "--passages_embeddings", str(tmp_path / "emb" / "*"), "--data", str(questions),
         "--output_dir", str(tmp_path / "out"), "--n_docs", "3",
         "--model_name_or_path", tiny_bert_path],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
    items = [json.loads(line) for line in (tmp_path / "out" / "popqa.jsonl").open()]
    originals = [json.loads(line) for line in questions.open()]
    assert [{k: v for k, v in i.items() if k != "ctxs"} for i in items] == originals
    corpus_ids = {p["id"] for p in load_passages(small_corpus)}
    for item in items:
        assert len(item["ctxs"]) == 3
        assert all(set(c) == {"id", "title", "text", "score"} and c["id"] in corpus_ids
                   for c in item["ctxs"])
    hidden = [p.name for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]
    assert hidden == [".popqa.jsonl.done.json"]  # no partial file; the record of the settings


def test_data_mode_resumes_after_an_interruption(tiny_encoder, small_corpus, tmp_path,
                                                 monkeypatch):
    passages = load_passages(small_corpus)
    generate_shard(passages, tiny_encoder, tmp_path / "emb")
    retriever = Retriever({"passages": str(small_corpus),
                           "passages_embeddings": str(tmp_path / "emb" / "*")})
    retriever.encoder = tiny_encoder
    retriever.setup_retriever()
    questions = _questions(tmp_path, n=5)
    searched, real = [], retriever.search_batch

    def flaky(queries, n_docs):
        if len(searched) == 4:
            raise KeyboardInterrupt
        searched.extend(queries)
        return real(queries, n_docs)

    monkeypatch.setattr(retriever, "search_batch", flaky)
    with pytest.raises(KeyboardInterrupt):
        add_ctxs(retriever, questions, tmp_path / "out", n_docs=2, chunk_size=2)
    assert not (tmp_path / "out" / "popqa.jsonl").exists()
    searched.clear()
    monkeypatch.setattr(retriever, "search_batch", lambda q, n: searched.extend(q) or real(q, n))
    out = add_ctxs(retriever, questions, tmp_path / "out", n_docs=2, chunk_size=2)
    assert len(searched) == 1  # only the fifth question was left
    expected = real([json.loads(line)["question"] for line in questions.open()], 2)
    assert [json.loads(line)["ctxs"] for line in out.open()] == expected
    add_ctxs(retriever, questions, tmp_path / "out", n_docs=2)  # done: skipped
    assert len(searched) == 1


def test_a_stale_output_is_refused_not_kept(tiny_encoder, small_corpus, tmp_path):
    # issue 12 items 5 and 1: a rerun with another input or --n_docs kept the old output, exit 0
    generate_shard(load_passages(small_corpus), tiny_encoder, tmp_path / "emb")
    retriever = Retriever({"passages": str(small_corpus),
                           "passages_embeddings": str(tmp_path / "emb" / "*")})
    retriever.encoder = tiny_encoder
    retriever.setup_retriever()
    questions = _questions(tmp_path, n=3)
    out = add_ctxs(retriever, questions, tmp_path / "out", n_docs=2)
    first = out.read_bytes()
    assert add_ctxs(retriever, questions, tmp_path / "out", n_docs=2) == out  # same: skipped
    with pytest.raises(SelfRagError, match=r"popqa\.jsonl exists \(written with another --n_docs\)"):
        add_ctxs(retriever, questions, tmp_path / "out", n_docs=3)
    lines = questions.read_text().splitlines(keepends=True)
    questions.write_text(lines[1] + lines[0] + lines[2])  # same size and names, other content
    with pytest.raises(SelfRagError, match=r"exists \(written with another input content\)"):
        add_ctxs(retriever, questions, tmp_path / "out", n_docs=2)
    assert out.read_bytes() == first


def test_an_output_of_unknown_origin_is_refused_before_the_index_is_built(tmp_path, capsys):
    data = tmp_path / "q.jsonl"
    data.write_text('{"question": "ok?"}\n')
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "q.jsonl").write_text('{"question": "ok?", "ctxs": []}\n')
    code = _script("passage_retrieval").main([  # the passage files do not even exist
        "--passages", str(tmp_path / "none.jsonl"), "--passages_embeddings", str(tmp_path / "e*"),
        "--data", str(data), "--output_dir", str(tmp_path / "out")])
    assert code == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'out' / 'q.jsonl'} exists (no record "
                                       "of the run that wrote it); delete it or choose another "
                                       "--output_dir\n")


def test_an_empty_input_is_an_error_before_any_work(tmp_path, capsys):
    # issue 12 item 5: an empty input wrote an empty output and exited 0
    data = tmp_path / "q.jsonl"
    data.write_text("\n")
    code = _script("passage_retrieval").main([
        "--passages", str(tmp_path / "none.jsonl"), "--passages_embeddings", str(tmp_path / "e*"),
        "--data", str(data), "--output_dir", str(tmp_path / "out")])
    assert code == 2
    assert capsys.readouterr().err == f"error: {data}: no records (the input is empty)\n"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("content, shards, message", [
    ("", 1, "corpus.jsonl: no records (the input is empty)"),
    ("id\ttext\ttitle\n", 1, "corpus.tsv: no passages (the corpus is empty)"),
    ('{"id": "1", "text": "a"}\n{"id": "2", "text": "b"}\n', 3,
     "shard 0 of 3 would be empty: the corpus has 2 passages"),
])
def test_embedding_an_empty_corpus_or_shard_is_an_error(tmp_path, capsys, content, shards,
                                                        message):
    corpus = tmp_path / ("corpus.tsv" if content.startswith("id") else "corpus.jsonl")
    corpus.write_text(content)
    code = _script("generate_passage_embeddings").main([
        "--passages", str(corpus), "--output_dir", str(tmp_path / "emb"), "--num_shards",
        str(shards), "--model_name_or_path", str(tmp_path / "no-such-encoder")])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "emb").exists()


def test_json_list_input_keeps_its_format_and_uses_instruction(tiny_encoder, small_corpus,
                                                               tmp_path):
    generate_shard(load_passages(small_corpus), tiny_encoder, tmp_path / "emb")
    retriever = Retriever({"passages": str(small_corpus),
                           "passages_embeddings": str(tmp_path / "emb" / "*")})
    retriever.encoder = tiny_encoder
    retriever.setup_retriever()
    data = tmp_path / "items.json"
    data.write_text(json.dumps([{"instruction": "Who is Henry Feilden?"}]))
    out = add_ctxs(retriever, data, tmp_path / "out", n_docs=2)
    (item,) = json.loads(out.read_text())
    assert item["instruction"] == "Who is Henry Feilden?" and len(item["ctxs"]) == 2


def test_ragged_tsv_exits_2_with_a_located_error_and_writes_nothing(tmp_path):
    bad = tmp_path / "psgs.tsv"
    bad.write_text("id\ttext\ttitle\n1\tok\tA\n2\tragged\n")
    run = subprocess.run(
        [sys.executable, "retrieval_lm/generate_passage_embeddings.py", "--passages", str(bad),
         "--output_dir", str(tmp_path / "emb")], cwd=REPO, capture_output=True, text=True,
        timeout=300, check=False)
    assert run.returncode == 2
    assert run.stderr.startswith("error: ") and "psgs.tsv, line 3" in run.stderr
    assert "Traceback" not in run.stderr and not (tmp_path / "emb").exists()


def test_item_without_question_exits_2_naming_line_and_field(tiny_bert_path, small_corpus,
                                                            tmp_path, capsys):
    from selfrag.retrieval.encoder import Encoder

    generate_shard(load_passages(small_corpus), Encoder.load(tiny_bert_path), tmp_path / "emb")
    data = tmp_path / "q.jsonl"
    data.write_text('{"question": "ok?"}\n{"query": "wrong field"}\n')
    code = _script("passage_retrieval").main([
        "--passages", str(small_corpus), "--passages_embeddings", str(tmp_path / "emb" / "*"),
        "--data", str(data), "--output_dir", str(tmp_path / "out"),
        "--model_name_or_path", tiny_bert_path])
    err = capsys.readouterr().err
    assert code == 2 and "q.jsonl, line 2: field 'question'" in err
    assert not (tmp_path / "out" / "q.jsonl").exists()


@pytest.mark.parametrize("flag", ["--n_docs", "--per_gpu_batch_size", "--question_maxlength",
                                  "--indexing_batch_size"])
@pytest.mark.parametrize("mode", ["--data", "--query"])
def test_a_count_flag_below_one_is_a_flag_error_before_any_work(tmp_path, capsys, flag, mode):
    # issue 12 item 11: --n_docs 0 was a faiss AssertionError after the index was built,
    # leaving the partial files; the passage files here do not even exist
    data = tmp_path / "q.jsonl"
    data.write_text('{"question": "ok?"}\n')
    code = _script("passage_retrieval").main([
        "--passages", str(tmp_path / "none.jsonl"), "--passages_embeddings", str(tmp_path / "e*"),
        mode, str(data) if mode == "--data" else "a query", "--output_dir", str(tmp_path / "out"),
        flag, "0"])
    assert code == 2
    assert capsys.readouterr().err == f"error: {flag}: must be at least 1\n"
    assert not (tmp_path / "out").exists()


def test_add_ctxs_refuses_n_docs_below_one_and_writes_nothing(tiny_encoder, tmp_path):
    from selfrag.errors import SelfRagError

    data = tmp_path / "q.jsonl"
    data.write_text('{"question": "ok?"}\n')
    with pytest.raises(SelfRagError, match="n_docs must be at least 1"):
        add_ctxs(Retriever({}), data, tmp_path / "out", n_docs=0)
    assert not (tmp_path / "out").exists()


def test_single_query_mode_prints_ranked_passages(tiny_bert_path, small_corpus, tmp_path,
                                                  capsys):
    from selfrag.retrieval.encoder import Encoder

    generate_shard(load_passages(small_corpus), Encoder.load(tiny_bert_path), tmp_path / "emb")
    code = _script("passage_retrieval").main([
        "--passages", str(small_corpus), "--passages_embeddings", str(tmp_path / "emb" / "*"),
        "--query", "Henry Feilden", "--n_docs", "2", "--model_name_or_path", tiny_bert_path])
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 0 and [d["rank"] for d in lines] == [1, 2]


@pytest.mark.slow
def test_minilm_retrieves_the_gold_passage_for_popqa_questions(minilm, tmp_path):
    """Real encoder on the real Contriever ctxs: the subject's own page comes first."""
    corpus = tmp_path / "c.jsonl"
    with (REPO / "eval_data" / "corpus" / "corpus.jsonl").open(encoding="utf-8") as handle:
        corpus.write_text("".join(line for _, line in zip(range(150), handle)))
    generate_shard(load_passages(corpus), minilm, tmp_path / "emb")
    retriever = Retriever({"passages": str(corpus),
                           "passages_embeddings": str(tmp_path / "emb" / "*")})
    retriever.encoder = minilm
    retriever.setup_retriever()
    docs = retriever.search_batch(["What is Henry Feilden's occupation?"], 3)[0]
    assert "Feilden" in docs[0]["title"]
