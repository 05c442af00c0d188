"""No-knowledge instructions: exact answers, seeded, disjoint probe set, labelled [No Retrieval]."""

import re

from selfrag.data_creation.generator.gold_judge import GoldJudge
from selfrag.reproduce.instructions import probe_instructions, training_instructions
from selfrag.tokens import NO_RETRIEVAL, RETRIEVAL, UTILITY


def test_answers_are_right():
    for item in training_instructions(90) + probe_instructions(30):
        q, a = item["instruction"], item["output"]
        if m := re.fullmatch(r"What is (\d+) plus (\d+)\?", q):
            assert int(a) == int(m[1]) + int(m[2])
        elif m := re.fullmatch(r"Subtract (\d+) from (\d+)\.", q):
            assert int(a) == int(m[2]) - int(m[1])
        elif m := re.fullmatch(r"What is (\d+) times (\d+)\?", q):
            assert int(a) == int(m[1]) * int(m[2])
        elif m := re.fullmatch(r"Write the word \"(\w+)\" backwards\.", q):
            assert a == m[1][::-1]
        elif m := re.fullmatch(r"Add up (\d+), (\d+) and (\d+)\.", q):
            assert int(a) == sum(map(int, m.groups()))
        elif m := re.fullmatch(r"Which number is larger, (\d+) or (\d+)\?", q):
            assert int(a) == max(int(m[1]), int(m[2]))
        assert item["answers"] == [a]


def test_seeded_distinct_and_probes_disjoint():
    first, again = training_instructions(200, seed=3), training_instructions(200, seed=3)
    assert first == again
    assert len({i["instruction"] for i in first}) == 200
    probes = probe_instructions(40)
    assert not {i["instruction"] for i in probes} & {i["instruction"] for i in first}


def test_gold_judge_says_no_retrieval_for_them_and_retrieval_for_popqa():
    items = training_instructions(2) + [{"id": "p1", "instruction": "Who wrote X?", "output": "Y",
                                         "answers": ["Y"], "dataset_name": "popqa"}]
    judge = GoldJudge(items)
    labels = [r["label"] for r in judge.label("retrieval", items)]
    assert labels == [NO_RETRIEVAL, NO_RETRIEVAL, RETRIEVAL]
    assert [r["label"] for r in judge.label("utility", items)] == [UTILITY[4]] * 3
