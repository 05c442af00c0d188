"""Steps 1-10 on hand-made inputs: queries, sentence splitting, critic runs, pairs."""

from __future__ import annotations

import pytest
from gen_helpers import scripted_critic

from selfrag.data_creation.generator.critic_runs import (
    TASKS,
    CriticJudge,
    clean_prediction,
    critic_input,
    generate_predictions,
)
from selfrag.data_creation.generator.prompt_data import make_pairs, select_sentences, split_jobs
from selfrag.data_creation.generator.retrieval_data import initial_queries, sentence_instances
from selfrag.data_creation.generator.sentences import RULE_BASED, Splitter
from selfrag.tokens import NO_RETRIEVAL, RETRIEVAL


@pytest.fixture(scope="module")
def splitter():
    return Splitter("auto")


def test_query_is_instruction_plus_output_and_task_instruction_is_stripped():
    items = [{"instruction": "Who wrote Hamlet?", "output": "Shakespeare.", "id": "a",
              "dataset_name": "popqa"},
             {"instruction": "Is the following statement correct or not? Say true if it's "
                             "correct; otherwise say false.## Input:\n\nThe sky is green.",
              "output": "false", "id": "fever_1", "dataset_name": "fever"}]
    queries = initial_queries(items)
    assert queries[0] == {"question": "Who wrote Hamlet? Shakespeare.", "answers": ["Shakespeare."],
                          "q_id": "a", "dataset_name": "popqa"}
    assert queries[1]["question"] == "The sky is green. false"


def test_abbreviations_do_not_end_sentences(splitter):
    text = "Dr. Smith moved to the U.S. in 1990. He stayed there.  Then he left!"
    sentences = splitter.split(text)
    assert [s.text for s in sentences] == ["Dr. Smith moved to the U.S. in 1990.",
                                           "He stayed there.", "Then he left!"]
    assert "".join(s.text + s.separator for s in sentences) == text


def test_splitter_choice_is_visible(splitter):
    assert splitter.name in (RULE_BASED, "en_core_web_sm")


def test_short_sentences_are_skipped_only_beyond_two_sentences(splitter):
    assert not any(s.skipped for s in splitter.split("Yes. It is."))
    three = splitter.split("Yes. The capital of France is Paris, on the Seine. It is big.")
    assert [s.skipped for s in three] == [True, False, True]


def test_sentence_instances_skip_items_that_need_no_retrieval(splitter):
    items = [{"instruction": "Q1", "output": "Paris is the capital of France. It lies on the Seine.",
              "id": "a", "dataset_name": "popqa", "input": ""},
             {"instruction": "Q2", "output": "Hello there.", "id": "b", "dataset_name": "popqa",
              "input": ""}]
    ctxs = {"a": [{"title": "Paris", "text": "Paris is a city."}]}
    labels = {"a": RETRIEVAL, "b": NO_RETRIEVAL}
    sentences, splitted, counts = sentence_instances(items, ctxs, labels, splitter)
    assert [s["q_id"] for s in sentences] == ["a", "a"] and counts["skipped_no_retrieval"] == 1
    assert sentences[0]["preceding_sentences"] is None
    assert sentences[1]["preceding_sentences"] == "Paris is the capital of France."
    assert sentences[0]["evidence"] == "Paris\nParis is a city."
    assert sentences[1]["question"] == "Q1 It lies on the Seine."
    assert splitted[0]["separators"] == [" ", ""]
    # The original's filter never fired: faithful keeps every item.
    faithful, _, _ = sentence_instances(items, ctxs, labels, splitter, faithful=True)
    assert {s["q_id"] for s in faithful} == {"a", "b"}


def test_no_preceding_sentences_use_the_template_without_that_line():
    sentence = {"instruction": "Q", "target_output": "S.", "evidence": "E",
                "preceding_sentences": None}
    ground = critic_input(TASKS["groudness"], sentence)
    assert "Preceding" not in ground and "None" not in ground
    multi = critic_input(TASKS["multi_retrieval"], sentence)
    assert multi == "Task instruction: Q\nEvidence: E\nOutput: S."
    assert "Preceding sentences: None" in critic_input(TASKS["groudness"], sentence, faithful=True)


def test_critic_prompt_is_the_training_prompt_unless_faithful():
    lm = scripted_critic({"retrieval": "[Retrieval]"})
    items = [{"instruction": "Who is Obama?"}]
    CriticJudge(lm, "c").label("retrieval", items)
    assert lm.prompts_seen[0].startswith("### Instruction:\nWhen provided")
    assert lm.prompts_seen[0].endswith("Task instruction: Who is Obama?\n\n### Response:")
    faithful = scripted_critic({"retrieval": "[Retrieval]"})
    CriticJudge(faithful, "c", faithful=True).label("retrieval", items)
    assert faithful.prompts_seen[0].startswith("Below is an instruction")


def test_every_item_is_predicted_including_the_last_partial_batch():
    lm = scripted_critic({"retrieval": lambda p: "[Retrieval]" if "even" in p else "[No Retrieval]"})
    items = [{"instruction": f"{'even' if i % 2 == 0 else 'odd'} question {i}"} for i in range(23)]
    records = CriticJudge(lm, "c", batch_size=10).label("retrieval", items)
    assert len(records) == 23 and [len(c) for c in lm.calls] == [10, 10, 3]
    assert records[22]["label"] == RETRIEVAL and records[21]["label"] == NO_RETRIEVAL
    assert all(r["judge"] == "c" for r in records)


def test_unparseable_predictions_are_kept_as_none_with_their_problem():
    lm = scripted_critic({"relevance": "Maybe"})
    records = CriticJudge(lm, "c").label("relevance", [{"instruction": "Q", "evidence": "E"}])
    assert records[0]["pred"] == "Maybe" and records[0]["label"] is None
    assert records[0]["problem"] == "no label"


def test_identical_prompts_are_generated_once_and_journal_resumes(tmp_path):
    lm = scripted_critic({"groundness": "[Fully supported]"})
    prompts = ["a", "b", "a", "c", "d"]
    journal = tmp_path / "j.jsonl"
    preds = generate_predictions(lm, prompts, batch_size=2, journal_path=journal)
    assert len(preds) == 5 and lm.prompts_seen == ["a", "b", "c", "d"]
    lines = journal.read_text().splitlines()
    journal.write_text("\n".join(lines[:2]) + "\n" + lines[2][:5])  # header, batch 1, torn line
    again = scripted_critic({"groundness": "[Fully supported]"})
    assert generate_predictions(again, prompts, batch_size=2, journal_path=journal) == preds
    assert again.prompts_seen == ["c", "d"]


def test_clean_prediction_cuts_at_blank_line_and_drops_junk():
    assert clean_prediction("[Relevant]</s>\n\nExplanation: x") == "[Relevant]"
    assert clean_prediction("<unk>[Utility:5][PAD]") == "[Utility:5]"


def _sentence(q_id, k, n_ctxs=3):
    return {"q_id": q_id, "sent_idx": k, "instruction": "Q", "output": "O", "target_output": f"S{k}",
            "preceding_sentences": None, "dataset_name": "arc_easy",
            "ctxs": [{"title": f"T{i}", "text": f"text {i}", "score": 3.0 - i}
                     for i in range(n_ctxs)]}


def test_pairs_follow_the_retrieve_decisions():
    sentences = [_sentence("a", 0), _sentence("a", 1), _sentence("a", 2), _sentence("a", 3)]
    multi = {"a#1": {"pred": "[Retrieval]", "label": RETRIEVAL},
             "a#2": {"pred": "[No Retrieval]", "label": NO_RETRIEVAL},
             "a#3": {"pred": "hmm", "label": None}}
    kept, counts = select_sentences(sentences, multi)
    assert [s["sent_idx"] for s in kept] == [0, 1]
    assert counts == {"kept": 2, "no_retrieval": 1, "unparseable": 1}
    pairs = make_pairs(kept, top_n=2)
    assert [(p["sent_idx"], p["p_idx"]) for p in pairs] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert pairs[1]["evidence"] == "T1\ntext 1"
    assert pairs[0]["instruction"].endswith("## Input:\n\nQ")  # task instruction put back


def test_num_jobs_split_keeps_the_remainder():
    parts = split_jobs(list(range(11)), 4)
    assert [len(p) for p in parts] == [3, 3, 3, 2]
    assert [x for part in parts for x in part] == list(range(11))
    assert split_jobs([1], 3) == [[1], [], []]
