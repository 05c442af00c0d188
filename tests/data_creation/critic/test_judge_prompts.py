"""Judge prompts: the original's structure (description, ## demonstrations, item, label field)."""

import pytest

from selfrag.data_creation.critic.judge_items import ItemOptions, choose_prompt, fill_in
from selfrag.data_creation.critic.judge_prompts import PROMPTS, SEPARATOR
from selfrag.data_creation.critic.labels import KINDS, parse_label

ITEM = {
    "instruction": "INSTRUCTION-TEXT", "preceding_sentences": "PRECEDING-TEXT",
    "evidence": "EVIDENCE-TEXT", "target_output": "SENTENCE-TEXT", "output": "OUTPUT-TEXT",
}
LABEL_FIELD = {
    "retrieval": "Need retrieval?", "multi_retrieval": "Rating",
    "multi_retrieval_no_preceding": "Rating", "multi_retrieval_three_way": "Rating",
    "multi_retrieval_three_way_no_preceding": "Rating", "relevance": "Rating",
    "relevance_multi": "Rating", "relevance_multi_no_preceding": "Rating",
    "groundness_multi": "Score", "groundness_multi_no_preceding": "Score",
    "groundness_context": "Score", "utility": "Perceived utility",
}


def test_every_variant_of_the_spec_exists():
    assert set(PROMPTS) == set(LABEL_FIELD)


@pytest.mark.parametrize("name", sorted(LABEL_FIELD))
def test_prompt_renders_the_item_and_ends_with_the_label_field(name):
    prompt = PROMPTS[name]
    text = prompt.render(ITEM)
    assert text.endswith(f"\n{LABEL_FIELD[name]}:")
    test_block = text.split(f"\n{SEPARATOR}\n")[-1]
    for shown, key in prompt.fields:
        assert f"{shown}: {ITEM[key]}" in test_block
    unused = {"instruction", "preceding_sentences", "evidence", "target_output", "output"}
    for key in unused - set(prompt.keys):
        assert ITEM[key] not in text
    assert "Explanation:" in prompt.description + text.split(SEPARATOR)[0]


@pytest.mark.parametrize("name", sorted(LABEL_FIELD))
def test_demonstrations_are_separated_by_hash_lines_and_carry_readable_labels(name):
    prompt = PROMPTS[name]
    text = prompt.render(ITEM)
    assert prompt.demonstrations
    assert text.count(f"\n\n{SEPARATOR}\n") == len(prompt.demonstrations) + 1
    for demo in prompt.demonstrations:
        assert f"{prompt.label_field}: {demo.answer}\nExplanation: {demo.explanation}" in text
        assert parse_label(prompt.kind, demo.answer).label is not None
        assert set(demo.fields) == set(prompt.keys)


def test_descriptions_name_every_label_the_kind_allows():
    for name in ("multi_retrieval_three_way", "relevance", "groundness_multi"):
        prompt = PROMPTS[name]
        for token in KINDS[prompt.kind].tokens:
            assert token in prompt.description
    assert "[Yes]" in PROMPTS["retrieval"].description
    assert "[No]" in PROMPTS["retrieval"].description


FIRST = {"sent_idx": 0, "preceding_sentences": ""}
LATER = {"sent_idx": 2, "preceding_sentences": "Before."}


@pytest.mark.parametrize(("labeller", "options", "item", "expected"), [
    ("need_retrieval", ItemOptions(), LATER, "retrieval"),
    ("need_retrieval", ItemOptions(multi_retrieval=True), LATER, "multi_retrieval"),
    ("need_retrieval", ItemOptions(multi_retrieval=True), FIRST, "multi_retrieval_no_preceding"),
    ("need_retrieval", ItemOptions(True, True), LATER, "multi_retrieval_three_way"),
    ("need_retrieval", ItemOptions(True, True), FIRST, "multi_retrieval_three_way_no_preceding"),
    # --faithful: the original's inverted three-way choice.
    ("need_retrieval", ItemOptions(True, True, True), LATER,
     "multi_retrieval_three_way_no_preceding"),
    ("need_retrieval", ItemOptions(True, True, True), FIRST, "multi_retrieval_three_way"),
    ("relevance", ItemOptions(), LATER, "relevance"),  # the original: KeyError
    ("relevance", ItemOptions(multi_retrieval=True), LATER, "relevance_multi"),
    ("relevance", ItemOptions(multi_retrieval=True), FIRST, "relevance_multi_no_preceding"),
    ("groundness", ItemOptions(), LATER, "groundness_context"),
    ("groundness", ItemOptions(multi_retrieval=True), LATER, "groundness_multi"),
    ("groundness", ItemOptions(multi_retrieval=True), FIRST, "groundness_multi_no_preceding"),
    ("utility", ItemOptions(), LATER, "utility"),
])
def test_prompt_choice(labeller, options, item, expected):
    assert choose_prompt(labeller, item, options).name == expected


def test_fill_ins_from_question_answers_and_input():
    item = fill_in({"question": "who wrote hamlet", "answers": ["Shakespeare"], "q_id": "nq_7"},
                   "relevance")
    assert item["output"] == item["target_output"] == "Shakespeare"
    assert item["instruction"].endswith(" who wrote hamlet") and item["id"] == "nq_7"
    assert item["instruction"] != "who wrote hamlet"  # the nq source instruction comes first
    faithful = fill_in({"question": "q?", "q_id": "fever_1"}, "relevance", faithful=True)
    assert faithful["instruction"].endswith(".q?")  # no space, as the original
    assert fill_in({"question": "q?", "q_id": "x_1"}, "relevance")["instruction"] == "q?"
    merged = fill_in({"instruction": "Sort these.", "input": "b a", "output": "a b"}, "utility")
    assert merged["instruction"] == "Sort these. b a"
    assert fill_in({"instruction": "Sort.", "input": "", "output": "x"}, "utility")[
        "instruction"] == "Sort."
