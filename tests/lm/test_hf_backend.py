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
    lm.forward_pass_tokens = 0  # padding alone decides: every prompt length differs, so 3 passes
    lengths = [len(lm.tokenizer(p)["input_ids"]) for p in PROMPTS]
    generations = lm.generate(PROMPTS, GenerationRequest(max_new_tokens=2))
    # prefill computes all tokens but the last of each prompt; decoding starts from the last ones
    assert lm.counts == {"prompts": 3, "forward_passes": 3, "decode_groups": 1,
                         "prompt_tokens": sum(lengths), "shared_prefix_tokens": 0,
                         "padded_prompt_tokens": sum(lengths),
                         "generated_tokens": sum(len(g.token_ids) for g in generations)}
    lm.forward_pass_tokens = 1e6  # passes cost more than any padding: as few as batch_size allows
    lm.generate(PROMPTS, GenerationRequest(max_new_tokens=2))
    longest, middle, shortest = sorted(n - 1 for n in lengths)[::-1]
    assert lm.counts["forward_passes"] == 3 + 2
    two_passes = min(2 * longest + shortest, longest + 2 * middle)  # the cheaper cut
    assert lm.counts["padded_prompt_tokens"] == sum(lengths) + two_passes + 3


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


SHARED = ("### Instruction:\nWhat is the capital of the country that borders Spain to the "
          "west?\n\n### Response:\n")
PASSAGES = ["[Retrieval]<paragraph>Lisbon is the capital of Portugal.</paragraph>",
            "[Retrieval]<paragraph>Madrid</paragraph>",
            "[Retrieval]<paragraph>Portugal borders Spain. Its largest city and capital is "
            "Lisbon, on the Atlantic coast.</paragraph>"]


def test_a_shared_prefix_is_computed_once_and_changes_nothing(tiny_model_path):
    prompts = [SHARED + p for p in PASSAGES] + PROMPTS
    request = GenerationRequest(max_new_tokens=6, control_ids=(49152, 49153, 100))
    reused = HFLanguageModel(tiny_model_path, device="cpu", batch_size=2)
    alone = HFLanguageModel(tiny_model_path, device="cpu", batch_size=2)
    alone.reuse_prefixes = False
    a, b = reused.generate(prompts, request), alone.generate(prompts, request)
    assert [g.token_ids for g in a] == [g.token_ids for g in b]
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.control_logprobs, y.control_logprobs, atol=1e-4)
        np.testing.assert_allclose(x.token_logprobs, y.token_logprobs, atol=1e-4)
    encoded = [reused.tokenizer(p)["input_ids"] for p in prompts[:3]]
    common = next(i for i in range(len(encoded[0])) if len({tuple(e[:i + 1]) for e in encoded}) > 1)
    assert common >= len(reused.tokenizer(SHARED)["input_ids"])
    assert reused.counts["shared_prefix_tokens"] == 2 * common  # computed once instead of 3 times
    assert alone.counts["shared_prefix_tokens"] == 0


def test_decoding_groups_within_memory_limits_give_the_same_outputs(tiny_model_path, monkeypatch):
    from selfrag.lm import hf

    request = GenerationRequest(max_new_tokens=5)
    lm = HFLanguageModel(tiny_model_path, device="cpu", batch_size=4)
    together = lm.generate(PROMPTS, request)
    assert lm.counts["decode_groups"] == 1
    monkeypatch.setattr(hf, "CPU_TENSOR_BYTES", lm.model.config.vocab_size * 4)  # 1 row a group
    lm.counts.clear()
    apart = lm.generate(PROMPTS, request)
    assert lm.counts["decode_groups"] == 3
    assert [g.token_ids for g in apart] == [g.token_ids for g in together]


def test_calls_reuse_one_block_of_cache_memory_and_stale_contents_change_nothing(tiny_model_path):
    lm = HFLanguageModel(tiny_model_path, device="cpu", batch_size=2)
    request = GenerationRequest(max_new_tokens=5, control_ids=(49152, 49153))
    first = lm.generate(PROMPTS, request)
    block = lm.arena.block
    with torch.inference_mode():  # the block was made there
        lm.arena.block.fill_(float("nan"))  # every batch cache must overwrite what it reads
    again = lm.generate(PROMPTS, request)
    assert lm.arena.block is block  # no new memory for the same work
    for a, b in zip(first, again):
        assert a.token_ids == b.token_ids
        np.testing.assert_array_equal(a.control_logprobs, b.control_logprobs)


def test_one_token_prompts_decode_from_an_empty_cache(lm):
    generations = lm.generate(["Hi", "a"], GenerationRequest(max_new_tokens=3))
    for prompt, generation in zip(["Hi", "a"], generations):
        ids = lm.tokenizer(prompt)["input_ids"]
        with torch.no_grad():
            logits = lm.model(torch.tensor([ids])).logits[0, -1]
        assert generation.token_ids[0] == int(logits.argmax())


def test_a_kept_cache_starts_the_next_calls_prompts_and_changes_nothing(tiny_model_path):
    """The retrieval decision's prompts, kept, start the passage prompts that extend them."""
    first = GenerationRequest(max_new_tokens=3, control_ids=(49152, 49153), keep_cache=True)
    then = GenerationRequest(max_new_tokens=6, control_ids=(49152, 49153))
    prompts = [SHARED + p for p in PASSAGES]
    reused = HFLanguageModel(tiny_model_path, device="cpu", batch_size=2)
    alone = HFLanguageModel(tiny_model_path, device="cpu", batch_size=2)
    alone.reuse_prefixes = False
    decision = reused.generate([SHARED], first)
    assert len(reused.kept) == 1
    reused.counts.clear()
    a = reused.generate(prompts, then)
    assert len(reused.kept) == 0  # kept for the next call only
    b = alone.generate(prompts, then)
    assert [g.token_ids for g in a] == [g.token_ids for g in b]
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.token_logprobs, y.token_logprobs, atol=1e-4)
        np.testing.assert_allclose(x.control_logprobs, y.control_logprobs, atol=1e-4)
    # the group's shared head comes from the kept row, its members share the head
    encoded = [reused.tokenizer(p)["input_ids"] for p in prompts]
    common = next(i for i in range(len(encoded[0])) if len({tuple(e[:i + 1]) for e in encoded}) > 1)
    shared_ids = reused.tokenizer(SHARED)["input_ids"]
    assert reused.counts["shared_prefix_tokens"] >= 2 * common + len(shared_ids)
    assert decision[0].token_ids  # the kept row also held its generated tokens but the last


def test_a_sliding_window_model_gives_the_same_outputs_with_reuse_on_and_off(tmp_path,
                                                                           base_tokenizer):
    """Layers of sliding attention keep the rows in memory of their own (kv_rows.batch_cache)."""
    from transformers import MistralConfig, MistralForCausalLM, StaticCache

    torch.manual_seed(0)
    config = MistralConfig(vocab_size=len(base_tokenizer), hidden_size=32, intermediate_size=64,
                           num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                           sliding_window=4096, pad_token_id=base_tokenizer.pad_token_id)
    MistralForCausalLM(config).save_pretrained(tmp_path)
    base_tokenizer.save_pretrained(tmp_path)
    prompts = [SHARED + p for p in PASSAGES] + PROMPTS
    request = GenerationRequest(max_new_tokens=4, control_ids=(49152, 49153))
    reused = HFLanguageModel(str(tmp_path), device="cpu", batch_size=2)
    assert type(StaticCache(config=reused.model.config, max_cache_len=8).layers[0]).__name__ \
        == "StaticSlidingWindowLayer"
    alone = HFLanguageModel(str(tmp_path), device="cpu", batch_size=2)
    alone.reuse_prefixes = False
    for a, b in zip(reused.generate(prompts, request), alone.generate(prompts, request)):
        assert a.token_ids == b.token_ids
        np.testing.assert_allclose(a.control_logprobs, b.control_logprobs, atol=1e-4)
    assert reused.counts["shared_prefix_tokens"] > 0
