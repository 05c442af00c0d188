"""Label masks, token by token, on hand-made examples (as the original ``finetune.py`` and
``train_special_tokens.py``; issue #95)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from selfrag.errors import InputError, SelfRagError
from selfrag.prompts import format_critic_prompt, format_instruction_prompt, format_prompt
from selfrag.training.sft_data import (
    IGNORE_INDEX,
    EncodeOptions,
    build_sft_dataset,
    check_paragraph_tags,
    encode_example,
    load_examples,
)

TWO_PASSAGES = {
    "instruction": "Who wrote Hamlet?",
    "input": "",
    "output": ("[Retrieval]<paragraph>Hamlet\nA tragedy by Shakespeare.</paragraph>[Relevant]"
               "Shakespeare wrote it.[Fully supported][Retrieval]<paragraph>Globe\nA theatre."
               "</paragraph>[Relevant]It was staged at the Globe.[Partially supported][Utility:5]"),
}


def ids(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def trained(tokenizer, encoded: dict) -> str:
    """The text the loss sees: the label tokens that are not masked, decoded."""
    kept = [lab for lab in encoded["labels"] if lab != IGNORE_INDEX]
    return tokenizer.decode(kept, skip_special_tokens=False)


def expected_fixed_labels(tokenizer, example: dict) -> tuple[list[int], list[int]]:
    """Hand-built ids/labels: prompt masked, each passage body masked, everything else kept."""
    prompt = ids(tokenizer, format_prompt(example["instruction"]))
    input_ids, labels = list(prompt), [IGNORE_INDEX] * len(prompt)
    segments = [("[Retrieval]<paragraph>", True), ("Hamlet\nA tragedy by Shakespeare.", False),
                (("</paragraph>[Relevant]Shakespeare wrote it.[Fully supported][Retrieval]"
                 "<paragraph>"), True), ("Globe\nA theatre.", False),
                ("</paragraph>[Relevant]It was staged at the Globe.[Partially supported]"
                 "[Utility:5]" + tokenizer.eos_token, True)]
    for text, in_loss in segments:
        piece = ids(tokenizer, text)
        input_ids += piece
        labels += piece if in_loss else [IGNORE_INDEX] * len(piece)
    return input_ids, labels


def test_fixed_masks_prompt_and_each_passage_body_only(base_tokenizer):
    encoded = encode_example(base_tokenizer, TWO_PASSAGES, EncodeOptions(max_seq_length=512))
    input_ids, labels = expected_fixed_labels(base_tokenizer, TWO_PASSAGES)
    assert encoded["input_ids"] == input_ids
    assert encoded["labels"] == labels
    assert not encoded["truncated"]
    assert trained(base_tokenizer, encoded) == (
        "[Retrieval]<paragraph></paragraph>[Relevant]Shakespeare wrote it.[Fully supported]"
        "[Retrieval]<paragraph></paragraph>[Relevant]It was staged at the Globe."
        "[Partially supported][Utility:5]" + base_tokenizer.eos_token)


def test_fixed_tokenization_equals_whole_string_tokenization(base_tokenizer):
    encoded = encode_example(base_tokenizer, TWO_PASSAGES, EncodeOptions())
    whole = base_tokenizer(format_prompt(TWO_PASSAGES["instruction"]) + TWO_PASSAGES["output"]
                           + base_tokenizer.eos_token)["input_ids"]
    assert encoded["input_ids"] == whole


def test_faithful_reproduces_off_by_one_and_first_to_last_span(base_tokenizer):
    encoded = encode_example(base_tokenizer, TWO_PASSAGES,
                             EncodeOptions(max_seq_length=512, faithful=True))
    prompt_len = len(ids(base_tokenizer, format_prompt(TWO_PASSAGES["instruction"])))
    labels = encoded["labels"]
    # Off by one: the last prompt token ("\n" after "### Response:") is trained.
    assert labels[: prompt_len - 1] == [IGNORE_INDEX] * (prompt_len - 1)
    assert labels[prompt_len - 1] == encoded["input_ids"][prompt_len - 1]
    assert base_tokenizer.decode([labels[prompt_len - 1]]) == "\n"
    # Everything between the first <paragraph> and the last </paragraph> is masked (#95).
    assert trained(base_tokenizer, encoded) == (
        "\n[Retrieval]<paragraph></paragraph>[Relevant]It was staged at the Globe."
        "[Partially supported][Utility:5]" + base_tokenizer.eos_token)


def test_faithful_without_paragraph_masking_trains_passages(base_tokenizer):
    options = EncodeOptions(faithful=True, mask_paragraphs=False)
    encoded = encode_example(base_tokenizer, TWO_PASSAGES, options)
    assert trained(base_tokenizer, encoded) == "\n" + TWO_PASSAGES["output"] + base_tokenizer.eos_token


def test_truncation_inside_a_passage_masks_to_the_end(base_tokenizer):
    full_ids, full_labels = expected_fixed_labels(base_tokenizer, TWO_PASSAGES)
    last_open = len(full_ids) - 1 - full_ids[::-1].index(
        base_tokenizer.convert_tokens_to_ids("<paragraph>"))
    cut = last_open + 3  # keeps the 2nd <paragraph> and two tokens of its body
    fixed = encode_example(base_tokenizer, TWO_PASSAGES, EncodeOptions(max_seq_length=cut))
    assert fixed["truncated"] and fixed["input_ids"] == full_ids[:cut]
    assert fixed["labels"] == full_labels[:cut]
    assert fixed["labels"][-2:] == [IGNORE_INDEX, IGNORE_INDEX]
    # The original masks from the first <paragraph> to the last </paragraph> left after the cut
    # (the 1st passage's), so the truncated 2nd passage body is trained: reproduced as is.
    faithful = encode_example(base_tokenizer, TWO_PASSAGES,
                              EncodeOptions(max_seq_length=cut, faithful=True))
    assert faithful["truncated"] and faithful["input_ids"] == full_ids[:cut]
    assert faithful["labels"][-2:] == full_ids[cut - 2:cut]


def test_faithful_truncated_after_an_open_tag_masks_to_the_end(base_tokenizer):
    example = {"instruction": "Q", "output": "[Retrieval]<paragraph>T\nlong passage text here"
               "</paragraph>Answer."}
    prompt_len = len(ids(base_tokenizer, format_prompt("Q")))
    options = EncodeOptions(max_seq_length=prompt_len + 5, faithful=True)
    encoded = encode_example(base_tokenizer, example, options)
    assert trained(base_tokenizer, encoded) == "\n[Retrieval]<paragraph>"


def test_critic_prompt_has_no_trailing_newline_and_is_fully_masked(base_tokenizer):
    example = {"instruction": "Rate it.", "input": "Evidence: x", "output": "[Relevant]"}
    for faithful in (False, True):
        encoded = encode_example(base_tokenizer, example,
                                 EncodeOptions(critic=True, faithful=faithful))
        prompt = ids(base_tokenizer, format_critic_prompt("Rate it.", "Evidence: x"))
        assert encoded["input_ids"][: len(prompt)] == prompt
        assert not format_critic_prompt("Rate it.", "x").endswith("\n")
        assert trained(base_tokenizer, encoded) == "[Relevant]" + base_tokenizer.eos_token


def test_critic_not_consider_special_tokens_masks_reflection_tokens(base_tokenizer):
    example = {"instruction": "Rate it.", "output": "[Utility:4] fine"}
    options = EncodeOptions(critic=True, mask_reflection_tokens=True)
    assert trained(base_tokenizer, encode_example(base_tokenizer, example, options)) == (
        " fine" + base_tokenizer.eos_token)


def test_with_input_prompt_is_used_when_input_nonempty(base_tokenizer):
    example = {"instruction": "Do it.", "input": "the input", "output": "ok"}
    encoded = encode_example(base_tokenizer, example, EncodeOptions())
    prompt = ids(base_tokenizer, format_instruction_prompt("Do it.", "the input"))
    assert "### Input:" in format_instruction_prompt("Do it.", "the input")
    assert encoded["input_ids"][: len(prompt)] == prompt


@pytest.mark.parametrize("text, problem", [
    ("a<paragraph>b", "never closed"),
    ("a</paragraph>b", "without an opening"),
    ("<paragraph>a<paragraph>b</paragraph></paragraph>", "nested"),
])
def test_unbalanced_paragraph_tags_are_described(text, problem):
    assert problem in check_paragraph_tags(text)
    assert check_paragraph_tags("x<paragraph>a</paragraph>y<paragraph>b</paragraph>") is None


def test_bad_lines_raise_input_error_with_file_line_field(tmp_path):
    path = tmp_path / "train.jsonl"
    lines = [{"instruction": "a", "output": "b"}, {"output": "no instruction"}]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    with pytest.raises(InputError) as err:
        load_examples(str(path))
    assert (err.value.line, err.value.field) == (2, "instruction")
    assert str(path) in str(err.value)
    path.write_text(json.dumps({"instruction": "a", "output": "x<paragraph>y"}) + "\n")
    with pytest.raises(InputError, match="unbalanced paragraph tags") as err:
        load_examples(str(path))
    assert (err.value.line, err.value.field) == (1, "output")
    path.write_text(json.dumps({"instruction": "a", "output": 3}) + "\n")
    with pytest.raises(InputError, match="must be a string"):
        load_examples(str(path))


def test_dataset_drops_fully_masked_and_counts_truncated(base_tokenizer):
    long_prompt = {"instruction": "word " * 80, "output": "short"}
    fits = {"instruction": "Q", "output": "A fine answer."}
    too_long = {"instruction": "Q", "output": "answer " * 80}
    dataset, stats = build_sft_dataset(base_tokenizer, [long_prompt, fits, too_long],
                                       EncodeOptions(max_seq_length=40))
    assert (stats.read, stats.truncated, stats.dropped_all_masked, stats.kept) == (3, 2, 1, 2)
    assert len(dataset) == 2 and max(dataset["length"]) == 40
    with pytest.raises(SelfRagError, match="every example is fully masked"):
        build_sft_dataset(base_tokenizer, [long_prompt], EncodeOptions(max_seq_length=40))


def test_released_training_sample_encodes(base_tokenizer):
    examples = load_examples(str(Path(__file__).resolve().parents[2] / "eval_data"
                                 / "selfrag_train_sample50.jsonl"))
    dataset, stats = build_sft_dataset(base_tokenizer, examples, EncodeOptions(max_seq_length=1024))
    assert stats.read == 50 and len(dataset) == stats.kept > 40
    open_id = base_tokenizer.convert_tokens_to_ids("<paragraph>")
    close_id = base_tokenizer.convert_tokens_to_ids("</paragraph>")
    for row in dataset.select(range(10)):
        inside = False
        for token, label in zip(row["input_ids"], row["labels"]):
            if inside and token != close_id:
                assert label == IGNORE_INDEX
            inside = (inside or token == open_id) and token != close_id


def test_offsets_and_piecewise_encodings_agree(base_tokenizer):
    """Fast tokenizers mask by character offsets; slow ones tokenize pieces apart: same result."""
    from selfrag.training.sft_data import _encode_fixed, _encode_pieces

    prompt, target = format_prompt("Who wrote Hamlet?"), TWO_PASSAGES["output"] + "</s>"
    for mask in (True, False):
        options = EncodeOptions(mask_paragraphs=mask, max_seq_length=60)
        assert _encode_fixed(base_tokenizer, prompt, target, options) == _encode_pieces(
            base_tokenizer, prompt, target, options)
