"""Rebuild the bundled evaluation files in eval_data/ from the shared real data.

    python scripts/build_eval_data.py --shared ../shared/data

Two files are byte copies of the first 100 lines of Self-RAG's own evaluation files. The
PubHealth file pairs the 987 PubHealth claims with passages derived from CRAG's evidence strips
of Self-RAG's retrieved passages (see eval_data/README.md): derived data, labelled as such; it
keeps the first 100 claims for which five passages could be formed, so that the README's
``--ndocs 5`` command runs on it.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

COPIES = ("popqa_longtail_w_gs.head100.jsonl", "arc_challenge_processed.head100.jsonl")
PUBHEALTH_OUT = "health_claims_processed.head100.jsonl"
PUBHEALTH_SIZE = 100
PASSAGES_PER_CLAIM = 5
ASQA_OUT, ASQA_SIZE, ASQA_DOCS = "asqa_dev.knowledge_docs.head20.json", 20, 5
FACTSCORE_OUT, FACTSCORE_SIZE = "factscore_bio.head20.jsonl", 20
TRAIN_SAMPLE = "selfrag_train_sample50.jsonl"


def split_titled(strip: str, separator: str) -> dict:
    title, _, text = strip.partition(separator)
    return {"title": title.strip(), "text": text.strip()} if text.strip() else {"title": "", "text": title.strip()}


def pubhealth_passages(knowledge: dict) -> list[dict]:
    """The internal strip (``Title // text``) first, then web snippets (``title: text; ...``)."""
    passages = [split_titled(knowledge["internal_knowledge"], " // ")]
    for snippet in str(knowledge["web_knowledge"]).split("; "):
        passage = split_titled(snippet, ": ")
        if passage["text"] and passage not in passages:
            passages.append(passage)
    return passages[:PASSAGES_PER_CLAIM]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", default="../shared/data", help="the shared data folder")
    parser.add_argument("--out", default="eval_data", help="where to write")
    args = parser.parse_args()
    shared, out = Path(args.shared), Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in COPIES:
        shutil.copyfile(shared / "eval" / name, out / name)
    claims = [json.loads(line) for line in (shared / "eval/health_claims.jsonl").open()]
    knowledge = [json.loads(line) for line in (shared / "crag_knowledge/health_claims.jsonl").open()]
    rows = []
    for claim, evidence in zip(claims, knowledge):
        assert claim["question"] == evidence["question"], claim["idx"]
        passages = pubhealth_passages(evidence)
        if len(passages) == PASSAGES_PER_CLAIM and len(rows) < PUBHEALTH_SIZE:  # --ndocs 5 works
            rows.append({"id": claim["idx"], "question": claim["question"],
                         "answers": claim["answers"], "ctxs": passages})
    (out / PUBHEALTH_OUT).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    (out / ASQA_OUT).write_text(json.dumps(asqa_items(shared), ensure_ascii=False, indent=1) + "\n")
    with (shared / "eval/factscore_bio.top10ctxs.jsonl").open() as source:
        bios = [line for _, line in zip(range(FACTSCORE_SIZE), source)]
    (out / FACTSCORE_OUT).write_text("".join(bios))
    shutil.copyfile(shared / "train" / TRAIN_SAMPLE, out / TRAIN_SAMPLE)
    print(f"wrote {len(COPIES) + 4} files to {out}")


def asqa_items(shared: Path) -> list[dict]:
    """ASQA dev questions in ALCE's layout, ``docs`` = the Wikipedia passages the ASQA annotators
    cited (oracle evidence, not GTR retrieval): the first questions with enough of them."""
    items = []
    for line in (shared / "eval/asqa_dev.jsonl").open():
        record = json.loads(line)
        docs, seen = [], set()
        for annotation in record["annotations"]:
            for knowledge in annotation.get("knowledge") or []:
                if knowledge["content"].strip() and knowledge["content"] not in seen:
                    seen.add(knowledge["content"])
                    docs.append({"title": knowledge.get("wikipage") or "", "text": knowledge["content"].strip()})
        if len(docs) >= ASQA_DOCS:
            items.append({"question": record["question"], "sample_id": record["id"],
                          "answer": record.get("nq_answer"), "qa_pairs": record["qa_pairs"],
                          "annotations": record["annotations"], "wikipages": record.get("wikipages"),
                          "docs": docs[:ASQA_DOCS]})
        if len(items) == ASQA_SIZE:
            return items
    return items


if __name__ == "__main__":
    main()
