"""Fixtures for the generator-data tests: a small real retriever and input items."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gen_helpers import CORPUS, POPQA, RELEASED, strip_reflection


@pytest.fixture(scope="session")
def small_retriever():
    """MiniLM over the first 40 passages of the bundled corpus (a few seconds to build)."""
    from selfrag.retrieval.encoder import Encoder
    from selfrag.retrieval.index import PassageIndex
    from selfrag.retrieval.passages import load_passages, passage_text
    from selfrag.retrieval.retriever import Retriever

    passages = load_passages(CORPUS)[:40]
    encoder = Encoder.load(device="cpu")
    vectors = encoder.encode([passage_text(p) for p in passages], batch_size=16)
    index = PassageIndex.create(encoder.dim, "Flat", vars(encoder.info))
    index.add([p["id"] for p in passages], vectors)
    return Retriever.from_components(encoder, index, passages)


@pytest.fixture()
def items_file(tmp_path) -> Path:
    """Two PopQA items (gold answers) and two released examples with their tokens stripped."""
    items = []
    for line in POPQA.read_text(encoding="utf-8").splitlines()[:2]:
        record = json.loads(line)
        answer = record["answers"][0]
        items.append({"instruction": record["question"],
                      "output": f"{answer.capitalize()}. Dr. Feilden served in the U.S. and in "
                                f"England as a {answer}. The family is well known in Britain.",
                      "input": "", "id": f"popqa_{record['id']}", "dataset_name": "popqa",
                      "answers": record["answers"]})
    released = [json.loads(line) for line in RELEASED.read_text(encoding="utf-8").splitlines()]
    for record in (released[33], released[43]):  # multi-sentence outputs
        items.append({**record, "output": strip_reflection(record["output"]).strip()})
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    return path
