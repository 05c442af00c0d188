"""The transformers backend against a direct forward pass of a tiny random Llama."""

import numpy as np
import pytest
import torch

from selfrag.lm.base import GenerationRequest
from selfrag.lm.hf import HFLanguageModel

PROMPTS = ["Hello there", "### Instruction:\nWho are you?\n\n### Response:\n", "a b c d e f g h i j"]


@pytest.fixture(scope="module")
def lm(tiny_model_path):
    return HFLanguageModel(tiny_model_path, device="cpu", batch_size=2)


def test_logprobs_match_a_full_forward_pass(lm):
    control = (49152, 49153, 100, 5)
    generations = lm.generate(PROMPTS, GenerationRequest(max_new_tokens=6, control_ids=control))
    for prompt, generation in zip(PROMPTS, generations):
        prompt_ids = lm.tokenizer(prompt)["input_ids"]
        with torch.no_grad():
            logits = lm.model(torch.tensor([prompt_ids + generation.token_ids])).logits[0].double()
        logprobs = torch.log_softmax(logits, dim=-1)[len(prompt_ids) - 1:-1]
        chosen = logprobs[torch.arange(len(generation.token_ids)), generation.token_ids]
        assert generation.cumulative_logprob == pytest.approx(chosen.sum().item(), abs=1e-4)
        np.testing.assert_allclose(generation.control_logprobs, logprobs[:, list(control)].numpy(),
                                   atol=1e-4)
        assert generation.text == lm.tokenizer.decode(generation.token_ids, skip_special_tokens=False)


def test_batching_does_not_change_greedy_outputs(lm, tiny_model_path):
    one = HFLanguageModel(tiny_model_path, device="cpu", batch_size=1)
    request = GenerationRequest(max_new_tokens=5)
    assert ([g.token_ids for g in one.generate(PROMPTS, request)]
            == [g.token_ids for g in lm.generate(PROMPTS, request)])


def test_a_stop_token_ends_the_continuation_and_is_kept(lm):
    free = lm.generate(PROMPTS[:1], GenerationRequest(max_new_tokens=6))[0]
    stop = free.token_ids[2]
    stopped = lm.generate(PROMPTS[:1], GenerationRequest(max_new_tokens=6, stop_token_ids=(stop,)))[0]
    assert stopped.token_ids == free.token_ids[: free.token_ids.index(stop) + 1]
    assert stopped.control_logprobs.shape == (len(stopped.token_ids), 0)


def test_counts_record_prompt_and_padded_tokens(tiny_model_path):
    lm = HFLanguageModel(tiny_model_path, device="cpu", batch_size=2)
    lm.decode_step_tokens = 0  # padding alone decides: every prompt length differs, so 3 batches
    lengths = [len(lm.tokenizer(p)["input_ids"]) for p in PROMPTS]
    generations = lm.generate(PROMPTS, GenerationRequest(max_new_tokens=2))
    assert lm.counts == {"prompts": 3, "batches": 3, "prompt_tokens": sum(lengths),
                         "padded_prompt_tokens": sum(lengths),
                         "generated_tokens": sum(len(g.token_ids) for g in generations)}
    lm.decode_step_tokens = 1e6  # batches cost more than any padding: as few as batch_size allows
    lm.generate(PROMPTS, GenerationRequest(max_new_tokens=2))
    longest, middle, shortest = sorted(lengths, reverse=True)
    assert lm.counts["batches"] == 3 + 2
    two_batches = min(2 * longest + shortest, longest + 2 * middle)  # the cheaper cut
    assert lm.counts["padded_prompt_tokens"] == sum(lengths) + two_batches


def test_a_prompt_longer_than_the_context_is_refused_before_any_compute(lm):
    # issue 12 item 4: a 200,000-character passage went through as a 40,001-token prompt to a
    # 4,096-position model, with only a transformers warning
    from selfrag.lm.base import PromptTooLong

    assert lm.context_length == 4096
    long_prompt = "Hello there. " * 20_000
    with pytest.raises(PromptTooLong) as err:
        lm.generate(["Hello", long_prompt], GenerationRequest(max_new_tokens=4))
    assert err.value.index == 1 and err.value.limit == 4096 and err.value.tokens > 4096
    assert str(err.value).endswith("exceeds the model's context of 4096 positions")
    fits = len(lm.tokenizer("Hello")["input_ids"])
    with pytest.raises(PromptTooLong):  # the new tokens must fit too
        lm.generate(["Hello"], GenerationRequest(max_new_tokens=4097 - fits))
    assert len(lm.generate(["Hello"], GenerationRequest(max_new_tokens=2))) == 1
