"""The training pool of the small-scale reproduction, cut from the shared data once.

``scripts/build_train_pool.py --shared ../shared/data`` writes ``eval_data/train_pool/``, which is
committed, so a clone runs the reproduction without the shared folder. What it holds:

- ``popqa.jsonl``: PopQA long-tail questions of lines 100-1099 (from 0) whose subject
  (``s_wiki_title``) and ``id`` differ from every test question (``popqa_longtail_w_gs.head100``),
  each with its evidence passages: CRAG's strip of Self-RAG's retrieved passages and the
  Wikipedia paragraphs of its subject (``crag_knowledge/popqa_longtail.jsonl``, same line).
- ``pubhealth.jsonl``: PubHealth claims of lines 0-699 that are not test claims
  (``health_claims_processed.head100``), with CRAG's evidence strip and web snippets.
- ``arc_c.jsonl``: ARC-Challenge questions of lines 100-799, with the same kinds of evidence.
- ``distractors.jsonl``: random Wikipedia passages (FlashRAG's 1,000-passage sample), which
  match no question: retrieval over the pool then returns irrelevant passages too.

The lines at and after 1100 (PopQA long tail), 700 (PubHealth) and 800 (ARC) are reserved for an
independent evaluation and are never read: every file is read with :func:`head_lines`, which
stops at the limit without parsing (or even reading) the lines after it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

from selfrag.io import read_records, write_jsonl_atomic

#: First reserved line (0-based) of each source file: nothing from there on is ever read.
RESERVED_FROM = {"popqa": 1100, "pubhealth": 700, "arc_c": 800}
#: First line of each training range (the lines before are the bundled test sets' questions).
TRAIN_FROM = {"popqa": 100, "pubhealth": 0, "arc_c": 100}
PASSAGE_WORDS = 80  # evidence passages are cut to this many words (training cost, see README)
SOURCES = {
    "popqa": ("eval/popqa_longtail.jsonl", "crag_knowledge/popqa_longtail.jsonl"),
    "pubhealth": ("eval/health_claims.jsonl", "crag_knowledge/health_claims.jsonl"),
    "arc_c": ("eval/arc_challenge_test.jsonl", "crag_knowledge/arc_challenge.jsonl"),
}
TEST_FILES = {
    "popqa": "popqa_longtail_w_gs.head100.jsonl",
    "pubhealth": "health_claims_processed.head100.jsonl",
    "arc_c": "arc_challenge_processed.head100.jsonl",
}


def head_lines(path: Path, start: int, stop: int) -> Iterator[tuple[int, dict]]:
    """``(line, record)`` for the 0-based lines ``start <= line < stop`` of a JSONL file.

    Reading stops at ``stop``: the lines after it are never read.
    """
    with open(path, encoding="utf-8") as handle:
        for number, text in enumerate(islice(handle, stop)):
            if number >= start and text.strip():
                yield number, json.loads(text)


def cut_words(text: str, words: int = PASSAGE_WORDS) -> str:
    parts = text.split()
    return " ".join(parts[:words])


def _strip_passage(strip: str) -> dict | None:
    """CRAG's ``Title // text`` strip (or plain text) as a passage."""
    strip = strip.strip()
    if not strip:
        return None
    title, _, text = strip.partition(" // ")
    if not text:
        title, text = "", strip
    return {"title": title.strip(), "text": cut_words(text)}


def _evidence(task: str, knowledge: dict) -> list[dict]:
    passages = [_strip_passage(knowledge.get("internal_knowledge") or "")]
    web = knowledge.get("web_knowledge")
    if isinstance(web, list):  # PopQA: Wikipedia paragraphs of the subject
        passages += [{"title": w.get("title", ""), "text": cut_words(w.get("text", ""))}
                     for w in web]
    elif isinstance(web, str) and web.strip():  # claims / ARC: web snippets joined by "; "
        passages.append({"title": "", "text": cut_words(web)})
    return [p for p in passages if p and p["text"]]


def build_pool(shared: Path, bundled: Path, out: Path) -> dict[str, int]:
    """Write the pool files of the module docstring; returns records per file."""
    test_ids = {task: set() for task in TEST_FILES}
    test_subjects: set[str] = set()
    for task, name in TEST_FILES.items():
        for _, record in read_records(bundled / name):
            test_ids[task].add(str(record["id"]))
            if task == "popqa":
                test_subjects.add(str(record.get("s_wiki_title", "")).strip().lower())
    counts = {}
    for task, (questions_file, knowledge_file) in SOURCES.items():
        start, stop = TRAIN_FROM[task], RESERVED_FROM[task]
        knowledge = dict(head_lines(shared / knowledge_file, start, stop))
        records = []
        for line, item in head_lines(shared / questions_file, start, stop):
            item_id = str(item.get("id", item.get("idx")))
            if item_id in test_ids[task]:
                continue
            if task == "popqa" and str(item.get("s_wiki_title", "")).strip().lower() in test_subjects:
                continue
            record = {"line": line, "id": item_id, "question": item["question"]}
            for key in ("answers", "choices", "answerKey", "s_wiki_title", "prop"):
                if key in item:
                    record[key] = item[key]
            record["evidence"] = _evidence(task, knowledge.get(line, {}))
            records.append(record)
        write_jsonl_atomic(out / f"{task}.jsonl", records)
        counts[task] = len(records)
    distractors = [{"id": str(r["id"]), "title": r.get("title", ""),
                    "text": cut_words(r.get("text", ""))}
                   for _, r in read_records(shared / "corpus/flashrag_wiki_sample1000.jsonl")]
    write_jsonl_atomic(out / "distractors.jsonl", distractors)
    counts["distractors"] = len(distractors)
    return counts
