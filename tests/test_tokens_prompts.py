"""Reflection tokens and prompt strings are interface facts: checked character by character."""

import pytest

from selfrag import prompts, tokens
from selfrag.tokens import MissingReflectionTokensError, reflection_token_ids


def test_fifteen_tokens_in_checkpoint_order():
    assert tokens.REFLECTION_TOKENS == (
        "[No Retrieval]", "[Retrieval]", "[Continue to Use Evidence]", "[Irrelevant]",
        "[Relevant]", "<paragraph>", "</paragraph>", "[Utility:1]", "[Utility:2]", "[Utility:3]",
        "[Utility:4]", "[Utility:5]", "[Fully supported]", "[Partially supported]",
        "[No support / Contradictory]",
    )
    assert tokens.ISSUP_GROUP == ("[Fully supported]", "[Partially supported]",
                                  "[No support / Contradictory]")
    assert "[Continue to Use Evidence]" in tokens.CONTROL_TOKENS
    assert "[Continue to Use Evidence]" not in tokens.FAITHFUL_CONTROL_TOKENS
    assert len(tokens.FAITHFUL_CONTROL_TOKENS) == 14


def test_ids_follow_the_addition_order(base_tokenizer):
    ids = reflection_token_ids(base_tokenizer)
    first = ids.id("[No Retrieval]")
    assert ids.all_ids == list(range(first, first + 15))
    text = "[Retrieval]<paragraph>Paris\nis big</paragraph>[Relevant]Yes[Fully supported][Utility:5]"
    encoded = base_tokenizer(text, add_special_tokens=False)["input_ids"]
    for token in ("[Retrieval]", "<paragraph>", "</paragraph>", "[Relevant]",
                  "[Fully supported]", "[Utility:5]"):
        assert ids.id(token) in encoded
    assert base_tokenizer.decode(encoded, skip_special_tokens=False) == text


def test_a_tokenizer_without_the_tokens_is_refused(plain_tokenizer):
    with pytest.raises(MissingReflectionTokensError, match="lacks 15 of the 15"):
        reflection_token_ids(plain_tokenizer)


def test_added_rows_start_as_the_mean_of_their_subwords(plain_tokenizer):
    import torch
    from transformers import LlamaForCausalLM

    from selfrag.offline_models import tiny_llama_config

    tokenizer = plain_tokenizer
    torch.manual_seed(0)
    model = LlamaForCausalLM(tiny_llama_config(len(tokenizer)))
    old = model.get_input_embeddings().weight.detach().clone()
    pieces = tokenizer("[Relevant]", add_special_tokens=False)["input_ids"]
    added = tokens.add_reflection_tokens(tokenizer, model)
    assert added == 15
    ids = reflection_token_ids(tokenizer)
    table = model.get_input_embeddings().weight
    assert table.shape[0] == len(tokenizer)
    torch.testing.assert_close(table[ids.id("[Relevant]")], old[pieces].mean(dim=0))
    torch.testing.assert_close(table[: old.shape[0]], old)


def test_generator_prompt_and_evidence_strings():
    assert prompts.format_prompt("Q?") == "### Instruction:\nQ?\n\n### Response:\n"
    assert (prompts.format_instruction_prompt("Q?", "ctx")
            == "### Instruction:\nQ?\n\n### Input:\nctx\n\n### Response:\n")
    assert prompts.format_instruction_prompt("Q?", "") == prompts.format_prompt("Q?")
    assert prompts.format_critic_prompt("I", "x") == "### Instruction:\nI\n\n### Input:\nx\n\n### Response:"
    assert (prompts.format_evidence({"title": "Paris", "text": "Capital of France."})
            == "[Retrieval]<paragraph>Paris\nCapital of France.</paragraph>")


def test_format_prompt_as_the_original_readme_calls_it():
    # The original README's quick start: format_prompt(input, paragraph=None), the paragraph
    # appended after the response marker, by keyword or by position.
    expected = ("### Instruction:\nCan you tell me?\n\n### Response:\n"
                "[Retrieval]<paragraph>The alpaca is smaller.</paragraph>")
    assert prompts.format_prompt("Can you tell me?", "The alpaca is smaller.") == expected
    assert prompts.format_prompt("Can you tell me?", paragraph="The alpaca is smaller.") == expected
    assert prompts.format_prompt(input="Can you tell me?") == "### Instruction:\nCan you tell me?\n\n### Response:\n"
    passage = {"title": "Alpaca", "text": "Smaller."}
    assert (prompts.format_prompt("Q", prompts.passage_text(passage))
            == prompts.format_prompt("Q") + prompts.format_evidence(passage))


def test_short_form_instructions_per_task():
    fever = prompts.short_form_instruction("The sky is green.", "fever")
    assert fever == ("Is the following statement correct or not? Say true if it's correct; "
                     "otherwise say false.\n\n## Input:\n\nThe sky is green.")
    assert prompts.short_form_instruction("Who?", None) == "Who?"
    assert prompts.short_form_instruction("Who?", "popqa") == "Who?"
    arc = prompts.short_form_instruction("Which?", "arc_c", {"label": ["1", "2", "3"], "text": ["a", "b", "c"]})
    assert arc == ("Given four answer candidates, A, B, C and D, choose the best answer choice."
                   "\n\n### Input:\nWhich?\nA: a\nB: b\nC: c")


def test_arc_faithful_keeps_the_original_quirks():
    five = {"label": list("ABCDE"), "text": list("abcde")}
    assert prompts.format_choices(five["label"], five["text"]) == "\nA: a\nB: b\nC: c\nD: d\nE: e"
    assert prompts.format_choices(five["label"], five["text"], faithful=True) == "\nA: a\nB: b\nC: c\nD: d"
    assert prompts.format_choices(["A", "B", "C"], ["a", "b", "c"], faithful=True) == "\nA: a\nB: b\nC: c\nD: "


def test_long_form_instruction_has_no_blank_line_before_input():
    assert prompts.long_form_instruction("Q", "asqa").endswith("correct answers.## Input:\n\nQ")
