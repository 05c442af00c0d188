"""The training pool: test and reserved items are never in it, reserved lines are never read."""

import json
from pathlib import Path

import pytest

from selfrag.reproduce.pool import RESERVED_FROM, TEST_FILES, build_pool, head_lines

ROOT = Path(__file__).resolve().parents[2]
POOL = ROOT / "eval_data" / "train_pool"


def test_head_lines_stops_before_the_limit_without_reading_on(tmp_path):
    path = tmp_path / "f.jsonl"
    # Lines from 3 on are not JSON: parsing them would fail, so they must not be read.
    path.write_text('{"a": 0}\n{"a": 1}\n{"a": 2}\nnot json\n{broken\n')
    assert [n for n, _ in head_lines(path, 1, 3)] == [1, 2]


def _write(path: Path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def test_build_pool_drops_test_items_and_subjects_and_never_reads_reserved_lines(tmp_path):
    shared, bundled = tmp_path / "shared", tmp_path / "bundled"
    popqa = [{"id": i, "question": f"q{i}", "answers": ["a"], "s_wiki_title": f"S{i}"}
             for i in range(RESERVED_FROM["popqa"])]
    popqa[150]["s_wiki_title"] = "S3"  # same subject as test question 3
    _write(shared / "eval/popqa_longtail.jsonl", popqa)
    _write(shared / "eval/health_claims.jsonl",
           [{"idx": i, "question": f"c{i}", "answers": ["true"]} for i in range(RESERVED_FROM["pubhealth"])])
    _write(shared / "eval/arc_challenge_test.jsonl",
           [{"id": f"m{i}", "question": f"a{i}", "choices": {"label": ["A"], "text": ["x"]},
             "answerKey": "A"} for i in range(RESERVED_FROM["arc_c"])])
    for name, task in (("popqa_longtail", "popqa"), ("health_claims", "pubhealth"),
                       ("arc_challenge", "arc_c")):
        _write(shared / f"crag_knowledge/{name}.jsonl",
               [{"idx": i, "internal_knowledge": f"T{i} // text {i}", "web_knowledge": "w"}
                for i in range(RESERVED_FROM[task])])
    # Reserved lines: malformed on purpose, so reading them would raise.
    for rel in ("eval/popqa_longtail.jsonl", "eval/health_claims.jsonl", "eval/arc_challenge_test.jsonl",
                "crag_knowledge/popqa_longtail.jsonl", "crag_knowledge/health_claims.jsonl",
                "crag_knowledge/arc_challenge.jsonl"):
        with open(shared / rel, "a") as handle:
            handle.write("RESERVED, NOT JSON\n" * 5)
    _write(shared / "corpus/flashrag_wiki_sample1000.jsonl", [{"id": "f-0", "title": "t", "text": "x"}])
    _write(bundled / TEST_FILES["popqa"], [{"id": i, "s_wiki_title": f"S{i}"} for i in range(100)])
    _write(bundled / TEST_FILES["pubhealth"], [{"id": i} for i in (0, 5, 120)])
    _write(bundled / TEST_FILES["arc_c"], [{"id": f"m{i}"} for i in range(100)])

    counts = build_pool(shared, bundled, tmp_path / "pool")
    assert counts == {"popqa": 999, "pubhealth": 697, "arc_c": 700, "distractors": 1}
    popqa_pool = [json.loads(x) for x in (tmp_path / "pool/popqa.jsonl").read_text().splitlines()]
    assert {r["line"] for r in popqa_pool} == set(range(100, 1100)) - {150}
    assert popqa_pool[0]["evidence"][0] == {"title": "T100", "text": "text 100"}
    claims = {json.loads(x)["id"] for x in (tmp_path / "pool/pubhealth.jsonl").read_text().splitlines()}
    assert not claims & {"0", "5", "120"} and max(map(int, claims)) == 699


@pytest.mark.parametrize("task", ["popqa", "pubhealth", "arc_c"])
def test_bundled_pool_holds_no_test_or_reserved_item(task):
    test_ids = {str(json.loads(x)["id"]) for x in (ROOT / "eval_data" / TEST_FILES[task]).read_text().splitlines()}
    pool = [json.loads(x) for x in (POOL / f"{task}.jsonl").read_text().splitlines()]
    assert pool and all(r["line"] < RESERVED_FROM[task] for r in pool)
    assert not {r["id"] for r in pool} & test_ids
    if task == "popqa":
        subjects = {json.loads(x)["s_wiki_title"].lower()
                    for x in (ROOT / "eval_data" / TEST_FILES[task]).read_text().splitlines()}
        assert not {r["s_wiki_title"].lower() for r in pool} & subjects
