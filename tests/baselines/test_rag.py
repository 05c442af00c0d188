"""RAG-Sequence and RAG-Token marginals against hand-computed numbers (Lewis et al. 2020)."""

import math

import numpy as np
import pytest

from selfrag.baselines.rag import RagSequence, RagToken, document_weights, mix_logprobs
from selfrag.lm.scripted import ScriptedLM, Step

E = math.e


def test_document_weights_softmax_of_scores_or_uniform():
    weights = document_weights([{"score": "1.0"}, {"score": 0.0}])
    assert weights == pytest.approx([E / (E + 1), 1 / (E + 1)])
    assert document_weights([{"score": 3.0}, {"text": "no score"}]) == pytest.approx([0.5, 0.5])
    assert document_weights([{"score": "n/a"}, {"score": 1}, {"score": 2}]) == pytest.approx([1 / 3] * 3)


def test_mix_logprobs_handles_impossible_tokens():
    with np.errstate(divide="ignore"):
        doc = np.log(np.array([[0.5, 0.0], [0.25, 0.0]]))
    mixed = mix_logprobs(doc, np.array([0.5, 0.5]))
    assert math.exp(mixed[0]) == pytest.approx(0.375)
    assert mixed[1] == -math.inf


# -- RAG-Sequence --------------------------------------------------------------------------------
# Each document's greedy candidate: d1 -> "A", d2 -> "B". p(y|x,d) (teacher forcing):
P_SEQ = {("x|d1", "A"): 0.6, ("x|d2", "A"): 0.1, ("x|d1", "B"): 0.3, ("x|d2", "B"): 0.9}


class TableScorer:
    """log p(continuation | prompt) read from a table keyed by the continuation's first token."""

    def __init__(self, tokenizer, table):
        self.tokenizer, self.table, self.calls = tokenizer, table, []

    def sequence_logprobs(self, prompts, continuations):
        self.calls.append(len(prompts))
        keys = [(p, self.tokenizer.convert_ids_to_tokens(c[0])) for p, c in zip(prompts, continuations)]
        return [math.log(self.table[k]) for k in keys]


def sequence_model(first_tokens):
    lm = ScriptedLM(lambda prompt: [Step({first_tokens[prompt]: 0.5}), Step({"</s>": 1.0})])
    return lm, TableScorer(lm.tokenizer, P_SEQ)


def test_rag_sequence_marginalises_with_retriever_weights():
    lm, scorer = sequence_model({"x|d1": "A", "x|d2": "B"})
    weights = document_weights([{"score": 1.0}, {"score": 0.0}])
    [answer] = RagSequence(lm, scorer).answer_batch([["x|d1", "x|d2"]], [weights])
    w1, w2 = E / (E + 1), 1 / (E + 1)
    p_a, p_b = w1 * 0.6 + w2 * 0.1, w1 * 0.3 + w2 * 0.9  # 0.4655 vs 0.4613
    assert answer.text == "A"
    assert answer.logprob == pytest.approx(math.log(p_a))
    by_text = {c.text: c for c in answer.candidates}
    assert math.exp(by_text["B"].marginal_logprob) == pytest.approx(p_b)
    assert np.exp(by_text["A"].doc_logprobs) == pytest.approx([0.6, 0.1])
    assert len(lm.calls) == 1 and scorer.calls == [4]  # one generate call, one scoring call


def test_rag_sequence_uniform_weights_change_the_winner():
    lm, scorer = sequence_model({"x|d1": "A", "x|d2": "B"})
    [answer] = RagSequence(lm, scorer).answer_batch([["x|d1", "x|d2"]], [np.array([0.5, 0.5])])
    assert answer.text == "B"
    assert math.exp(answer.logprob) == pytest.approx(0.5 * 0.3 + 0.5 * 0.9)


def test_rag_sequence_scores_a_shared_candidate_once_per_document():
    lm, scorer = sequence_model({"x|d1": "A", "x|d2": "A"})
    [answer] = RagSequence(lm, scorer).answer_batch([["x|d1", "x|d2"]], [np.array([0.5, 0.5])])
    assert [c.text for c in answer.candidates] == ["A"] and scorer.calls == [2]
    assert math.exp(answer.logprob) == pytest.approx(0.35)


# -- RAG-Token -----------------------------------------------------------------------------------
VOCAB = ["</s>", "a", "b", "c"]


class ScriptedSession:
    def __init__(self, table, prompts):
        self.table, self.prompts, self.prefixes = table, prompts, [()] * len(prompts)

    def logprobs(self):
        rows = [self.table.get((p, prefix), [1.0, 0, 0, 0])  # after the end: anything
                for p, prefix in zip(self.prompts, self.prefixes)]
        with np.errstate(divide="ignore"):
            return np.log(np.array(rows, dtype=float))

    def append(self, token_ids):
        self.prefixes = [prefix + (VOCAB[t],) for prefix, t in zip(self.prefixes, token_ids)]


class ScriptedNextTokenModel:
    """Full next-token distributions over VOCAB per (prompt, generated prefix)."""

    def __init__(self, table):
        self.table, self.stop_token_ids, self.sessions = table, {0}, []

    def start(self, prompts):
        self.sessions.append(list(prompts))
        return ScriptedSession(self.table, prompts)

    def decode(self, ids):
        return " ".join(VOCAB[i] for i in ids)


# Step 1: d1 prefers "a", d2 prefers "c"; the uniform mixture prefers "b" (0.45 vs 0.275).
# Step 2 (after "b"): d1 ends with 0.8, d2 continues with "c" 0.7.
TOKEN_TABLE = {
    ("d1", ()): [0.0, 0.5, 0.45, 0.05], ("d2", ()): [0.0, 0.05, 0.45, 0.5],
    ("d1", ("b",)): [0.8, 0.1, 0.0, 0.1], ("d2", ("b",)): [0.3, 0.0, 0.0, 0.7],
    ("d1", ("b", "c")): [1.0, 0.0, 0.0, 0.0], ("d2", ("b", "c")): [0.9, 0.1, 0.0, 0.0],
}


def test_rag_token_decodes_the_per_step_mixture():
    model = ScriptedNextTokenModel(TOKEN_TABLE)
    answer = RagToken(model, max_new_tokens=5).answer(["d1", "d2"], np.array([0.5, 0.5]))
    # step 1: b = 0.45; step 2: </s> = 0.5*0.8 + 0.5*0.3 = 0.55 > c = 0.4
    assert answer.token_ids == [2, 0] and answer.text == "b"
    assert answer.logprob == pytest.approx(math.log(0.45) + math.log(0.55))


def test_rag_token_weights_shift_the_mixture():
    model = ScriptedNextTokenModel(TOKEN_TABLE)
    answer = RagToken(model, max_new_tokens=5).answer(["d1", "d2"], np.array([0.2, 0.8]))
    # step 1: a = 0.14, b = 0.45, c = 0.41 -> b; step 2: </s> = 0.16+0.24 = 0.40, c = 0.02+0.56 = 0.58
    # step 3: </s> = 0.2*1.0 + 0.8*0.9 = 0.92
    assert answer.text == "b c"
    assert answer.logprob == pytest.approx(math.log(0.45) + math.log(0.58) + math.log(0.92))


def test_rag_token_stops_at_max_new_tokens():
    model = ScriptedNextTokenModel(TOKEN_TABLE)
    answer = RagToken(model, max_new_tokens=1).answer(["d1", "d2"], np.array([0.5, 0.5]))
    assert answer.token_ids == [2] and answer.text == "b"


def test_rag_token_batches_queries_and_each_mixes_only_its_own_documents():
    model = ScriptedNextTokenModel(TOKEN_TABLE)
    prompts, weights = [["d1", "d2"], ["d1", "d2"], ["d2"]], [np.array([0.5, 0.5]),
                                                              np.array([0.2, 0.8]), np.array([1.0])]
    alone = [RagToken(model, 5).answer(p, w) for p, w in zip(prompts, weights)]
    model.sessions.clear()
    together = RagToken(model, 5, max_rows=4).answer_batch(prompts, weights)
    assert model.sessions == [["d1", "d2", "d1", "d2"], ["d2"]]  # a query is never split
    assert [a.text for a in together] == [a.text for a in alone] == ["b", "b c", "c"]
    assert [a.logprob for a in together] == pytest.approx([a.logprob for a in alone])
