"""The transformers helpers behind RAG: teacher forcing and the KV-cached lock-step session."""

import numpy as np
import pytest
import torch

from selfrag.baselines.hf_steps import HFNextTokenModel, HFSequenceScorer
from selfrag.baselines.rag import RagSequence, RagToken
from selfrag.lm.base import GenerationRequest
from selfrag.lm.hf import HFLanguageModel

PROMPTS = ["Hello there, who", "A much longer prompt about the capital of France is", "x"]


@pytest.fixture(scope="module")
def lm(tiny_model_path):
    return HFLanguageModel(tiny_model_path, device="cpu", batch_size=2)


def test_teacher_forcing_matches_the_generation_logprob(lm):
    generations = lm.generate(PROMPTS, GenerationRequest(5))
    scores = HFSequenceScorer.from_lm(lm).sequence_logprobs(PROMPTS, [g.token_ids for g in generations])
    assert scores == pytest.approx([g.cumulative_logprob for g in generations], abs=1e-3)


def test_cached_session_matches_a_full_forward_pass_despite_left_padding(lm):
    session = HFNextTokenModel.from_lm(lm).start(PROMPTS)
    appended = [5, 77, 1200]
    for token in appended:
        session.append([token] * len(PROMPTS))
    cached = session.logprobs()
    for row, prompt in enumerate(PROMPTS):
        ids = torch.tensor([lm.tokenizer(prompt)["input_ids"] + appended])
        with torch.no_grad():
            full = torch.log_softmax(lm.model(ids).logits[0, -1].float(), -1).double().numpy()
        assert np.abs(full - cached[row]).max() < 1e-4


def test_one_document_rag_is_plain_greedy_decoding(lm):
    [greedy] = lm.generate([PROMPTS[1]], GenerationRequest(6))
    token = RagToken(HFNextTokenModel.from_lm(lm), 6).answer([PROMPTS[1]], np.array([1.0]))
    [sequence] = RagSequence(lm, HFSequenceScorer.from_lm(lm), 6).answer_batch(
        [[PROMPTS[1]]], [np.array([1.0])])
    assert token.token_ids == sequence.token_ids == greedy.token_ids
    assert token.logprob == pytest.approx(greedy.cumulative_logprob, abs=1e-3)
    assert sequence.logprob == pytest.approx(greedy.cumulative_logprob, abs=1e-3)


def test_rag_token_groups_of_queries_decode_like_single_queries(lm):
    model = HFNextTokenModel.from_lm(lm)
    doc_prompts = [PROMPTS[:2], PROMPTS[1:], [PROMPTS[2]]]
    weights = [np.array([0.7, 0.3]), np.array([0.5, 0.5]), np.array([1.0])]
    alone = [RagToken(model, 5).answer(p, w) for p, w in zip(doc_prompts, weights)]
    together = RagToken(model, 5, max_rows=5).answer_batch(doc_prompts, weights)
    assert [a.token_ids for a in together] == [a.token_ids for a in alone]
    assert [a.logprob for a in together] == pytest.approx([a.logprob for a in alone], abs=1e-3)
