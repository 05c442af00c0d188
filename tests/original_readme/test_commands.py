"""The original README's command lines (``commands.txt``) run here as written.

Each block runs as a subprocess in a scratch copy of the folder its ``cd`` names, holding small
files under the names the README uses (``eval_data/popqa_longtail_w_gs.jsonl``, ...), made from
the bundled data. Only the models, the placeholders and the script paths are substituted: the
7B models become the tiny random Llama, Contriever the offline MiniLM, GPT-3.5 a local fake
OpenAI server. Every block must exit 0 and write output in the format the README describes.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from support.fake_openai import FakeOpenAI
from support.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = Path(__file__).with_name("commands.txt")
EVAL = ROOT / "eval_data"
N_ITEMS = 2


def blocks() -> list[tuple[str, str, list[str]]]:
    """``(title, folder, command words)`` for every ``## title`` block of commands.txt."""
    out = []
    for chunk in COMMANDS.read_text(encoding="utf-8").split("\n## ")[1:]:
        title, _, body = chunk.partition("\n")
        lines = [line for line in body.splitlines() if line.strip()]
        folder = lines[0].removeprefix("cd ").strip()
        text = ("\n".join(lines[1:]) + "\n").replace("\\\n", " ")  # join continued lines
        out.append((title.strip(), folder, shlex.split(text)))
    return out


BLOCKS = {title: (folder, words) for title, folder, words in blocks()}


def test_the_list_holds_every_command_of_the_original_readme():
    assert list(BLOCKS) == [
        "retriever: generate embeddings", "retriever: run retrieval", "critic training",
        "short form: question answering", "short form: ARC-Challenge", "short form: PubHealth",
        "long form: ASQA", "long form: FactScore", "baselines: Hugging Face model",
        "baselines: OpenAI API", "baselines: Hugging Face model with retrieval",
        "baselines: OpenAI API with retrieval"]
    assert all(folder in ("retrieval_lm", "data_creation") for folder, _ in BLOCKS.values())


def _head(source: Path, target: Path, n: int = N_ITEMS) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.suffix == ".json":
        target.write_text(json.dumps(json.loads(source.read_text())[:n]))
    else:
        target.write_text("".join(source.read_text().splitlines(keepends=True)[:n]))



@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """The folders the README's commands run in, with its input files (small versions)."""
    base = tmp_path_factory.mktemp("original_readme")
    lm = base / "retrieval_lm"
    _head(EVAL / "popqa_longtail_w_gs.head100.jsonl", lm / "eval_data/popqa_longtail_w_gs.jsonl")
    _head(EVAL / "arc_challenge_processed.head100.jsonl",
          lm / "eval_data/arc_challenge_processed.jsonl")
    _head(EVAL / "health_claims_processed.head100.jsonl",
          lm / "eval_data/health_claims_processed.jsonl")
    _head(EVAL / "asqa_dev.knowledge_docs.head20.json", lm / "eval_data/asqa_eval_gtr_top100.json")
    _head(EVAL / "factscore_bio.head20.jsonl",
          lm / "eval_data/factscore_unlabeled_alpaca_13b_retrieval.jsonl")
    corpus = [json.loads(line) for line in
              (EVAL / "corpus/corpus.jsonl").read_text().splitlines()[:48]]
    (lm / "psgs_w100.tsv").write_text("id\ttext\ttitle\n" + "".join(
        f"{p['id']}\t{' '.join(p['text'].split())}\t{p['title']}\n" for p in corpus))
    (lm / "queries.jsonl").write_text("".join(
        json.dumps({"question": q}) + "\n" for q in ("Who was Henry Feilden?", "What is a llama?")))
    (lm / "openai_key.txt").write_text("sk-test-not-a-real-key\n")
    critic = base / "data_creation"
    critic.mkdir()
    examples = [{"instruction": f"Is passage {i} relevant to the question?", "input": f"Q{i}",
                 "output": "[Relevant]" if i % 2 else "[Irrelevant]"} for i in range(8)]
    (critic / "critic_train.json").write_text(json.dumps(examples))
    return base


PLACEHOLDERS = {
    "YOUR_OUTPUT_DIR": "wikipedia_embeddings", "YOUR_PASSAGE_DATA": "psgs_w100.tsv",
    "YOUR_INPUT_FILE": "queries.jsonl", "MODE": "adaptive_retrieval",
    "PATH_TO_TRAIN_DATA_FILE": "critic_train.json", "PATH_TO_CRITIC_MODEL": "critic_model",
    "INPUT_FILE_SAME_AS_SELF_RAG": "eval_data/popqa_longtail_w_gs.jsonl",
    "YOUR_OPEN_AI_API_KEY_FILE": "openai_key.txt",
}
OUTPUTS = ("YOUR_OUTPUT_FILE_NAME", "YOUR_OUTPUT_FILE", "OUTPUT_FILE_NAME", "RESULT_FILE_PATH")


def command(words: list[str], folder: str, tiny_model: str, out: str) -> list[str]:
    """The README's words with this machine's models, paths and placeholders."""
    models = {"selfrag/selfrag_llama2_7b": tiny_model, "meta-llama/Llama-2-7b-hf": tiny_model,
              "facebook/contriever-msmarco": "all-minilm-l6-v2"}
    result = []
    for word in words:
        word = models.get(word, PLACEHOLDERS.get(word, out if word in OUTPUTS else word))
        if word.endswith(".py") and (ROOT / folder / word).is_file():
            word = str(ROOT / folder / word)  # the checkout's script, run from the scratch folder
        elif word.startswith("--master_port="):
            word = f"--master_port={free_port()}"
        result.append(word)
    if result[0] == "python":
        result[0] = sys.executable
    elif result[0] == "torchrun":
        result[:1] = [sys.executable, "-m", "torch.distributed.run"]
    return result


def run_block(title: str, workdir: Path, tiny_model: str, out: str, env: dict | None = None,
              shard: int | None = None) -> subprocess.CompletedProcess:
    folder, words = BLOCKS[title]
    if shard is not None:
        words = [str(shard) if w == "${i}" else w for w in words]
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
                "OMP_NUM_THREADS": "1", **(env or {})}
    full_env.pop("PYTHONPATH", None)  # the scripts must find this checkout by themselves
    full_env.pop("OPENAI_API_KEY", None)  # the key comes from the README's --api_key file
    result = subprocess.run(command(words, folder, tiny_model, out), cwd=workdir / folder,
                            env=full_env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, f"{title}: exit {result.returncode}\n{result.stderr[-3000:]}"
    return result


def test_retriever_commands(workdir, tiny_model_path):
    for shard in range(4):  # the README's `for i in {0..3}` loop
        run_block("retriever: generate embeddings", workdir, tiny_model_path, "-", shard=shard)
    shards = sorted((workdir / "retrieval_lm/wikipedia_embeddings").glob("passages_*.npy"))
    assert [p.name for p in shards] == [f"passages_0{i}.npy" for i in range(4)]
    run_block("retriever: run retrieval", workdir, tiny_model_path, "retrieved")
    rows = [json.loads(line) for line in
            (workdir / "retrieval_lm/retrieved/queries.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(len(r["ctxs"]) == 20 for r in rows)
    assert {"id", "title", "text", "score"} <= set(rows[0]["ctxs"][0])


def test_critic_training_command(workdir, tiny_model_path):
    run_block("critic training", workdir, tiny_model_path, "-")
    model = workdir / "data_creation/critic_model"
    assert (model / "config.json").is_file() and list(model.glob("*.safetensors"))
    assert "[Relevant]" in (model / "tokenizer.json").read_text() or \
        "[Relevant]" in (model / "tokenizer_config.json").read_text()


@pytest.mark.parametrize("title", ["short form: question answering", "short form: ARC-Challenge",
                                   "short form: PubHealth"])
def test_short_form_commands(workdir, tiny_model_path, title):
    out = re.sub(r"\W+", "_", title) + ".json"
    result = run_block(title, workdir, tiny_model_path, out)
    data = json.loads((workdir / "retrieval_lm" / out).read_text())
    assert len(data["preds"]) == len(data["golds"]) == len(data["metric_results"]) == N_ITEMS
    if "--dtype" in BLOCKS[title][1]:  # --dtype half on a CPU: said once, runs in float32
        assert result.stderr.count("--dtype half: running in float32 on CPU") == 1


def test_long_form_commands(workdir, tiny_model_path):
    run_block("long form: ASQA", workdir, tiny_model_path, "asqa_out.json")
    asqa = json.loads((workdir / "retrieval_lm/asqa_out.json").read_text())
    assert len(asqa["data"]) == N_ITEMS and all("output" in item for item in asqa["data"])
    run_block("long form: FactScore", workdir, tiny_model_path, "bio_out.jsonl")
    lines = (workdir / "retrieval_lm/bio_out.jsonl").read_text().splitlines()
    assert len(lines) == N_ITEMS and {"input", "output", "topic"} <= set(json.loads(lines[0]))


@pytest.mark.parametrize("title", ["baselines: Hugging Face model",
                                   "baselines: Hugging Face model with retrieval",
                                   "baselines: OpenAI API", "baselines: OpenAI API with retrieval"])
def test_baseline_commands(workdir, tiny_model_path, title):
    out = re.sub(r"\W+", "_", title) + ".jsonl"
    with FakeOpenAI(answer=lambda prompt: "politician") as server:
        env = {"OPENAI_BASE_URL": server.base_url}
        run_block(title, workdir, tiny_model_path, out, env=env)
        if "OpenAI" in title:
            assert len(server.requests) == N_ITEMS
            assert server.requests[0]["authorization"] == "Bearer sk-test-not-a-real-key"
    records = [json.loads(line) for line in
               (workdir / "retrieval_lm" / out).read_text().splitlines()]
    assert len(records) == N_ITEMS and all("golds" in r for r in records)


# The README's Python quick start with the demo retriever, run from retrieval_lm/ as written
# there (models and paths substituted; vLLM's generate is not run: no GPU).
RETRIEVER_SNIPPET = """
from passage_retriever import Retriever
from selfrag.prompts import format_prompt  # the README defines it; ours has its signature
query_3 = "When does overfitting occur?"
retriever = Retriever({})
retriever.setup_retriever_demo("all-minilm-l6-v2", PASSAGES, EMBEDDINGS,  n_docs=5, save_or_load_index=False)
retrieved_documents = retriever.search_document_demo(query_3, 5)
prompts = [format_prompt(query_3, doc["title"] +"\\n"+ doc["text"]) for doc in retrieved_documents]
top_doc = retriever.search_document_demo(query_3, 1)[0]
print(len(prompts), prompts[0].endswith("</paragraph>"), top_doc["id"] == retrieved_documents[0]["id"])
"""


def test_readme_python_retriever_snippet(workdir, tiny_model_path):
    embeddings = workdir / "retrieval_lm/wikipedia_embeddings"
    if not list(embeddings.glob("passages_*.npy")):
        for shard in range(4):
            run_block("retriever: generate embeddings", workdir, tiny_model_path, "-", shard=shard)
    code = (RETRIEVER_SNIPPET.replace("PASSAGES", repr(str(workdir / "retrieval_lm/psgs_w100.tsv")))
            .replace("EMBEDDINGS", repr(str(embeddings / "*"))))
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    env.pop("PYTHONPATH", None)
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "retrieval_lm", env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["5", "True", "True"]
