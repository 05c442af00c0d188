"""RAG-Sequence and RAG-Token (Lewis et al. 2020) over any causal LM.

Both marginalise over the top-K retrieved documents ``d`` of a query ``x`` with document weights
``p(d|x)`` = softmax of the retriever scores (uniform when a score is missing):

- RAG-Sequence: ``p(y|x) = sum_d p(d|x) p(y|x,d)``. Candidates: one greedy continuation per
  document; each distinct candidate is then scored under every document by teacher forcing and
  the candidate with the largest marginal wins ("thorough decoding" with one candidate per doc).
- RAG-Token: ``p(y_t|x,y_<t) = sum_d p(d|x) p(y_t|x,d,y_<t)``, decoded greedily on the mixture;
  the K document prompts of several queries advance together, one row each, with a KV cache.

The models are small protocols (:class:`SequenceScorer`, :class:`NextTokenModel`), implemented
for transformers models in :mod:`selfrag.baselines.hf_steps` and by scripted models in the tests.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from selfrag.lm.base import GenerationRequest, LanguageModel


def document_weights(passages: Sequence[Mapping]) -> np.ndarray:
    """``p(d|x)``: softmax over the passages' ``score`` fields (strings allowed, as in the
    Contriever hits of the original evaluation files); uniform when any score is missing or not
    a number."""
    scores = []
    for passage in passages:
        try:
            scores.append(float(passage["score"]))
        except (KeyError, TypeError, ValueError):
            return np.full(len(passages), 1.0 / len(passages))
    scores = np.array(scores, dtype=float)
    if not np.all(np.isfinite(scores)):
        return np.full(len(passages), 1.0 / len(passages))
    exp = np.exp(scores - scores.max())
    return exp / exp.sum()


def _logsumexp(values: np.ndarray, axis: int = 0) -> np.ndarray:
    top = np.max(values, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return np.squeeze(top, axis=axis) + np.log(np.sum(np.exp(values - top), axis=axis))


def mix_logprobs(doc_logprobs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``log sum_d w_d exp(doc_logprobs[d, ...])`` over the first axis."""
    with np.errstate(divide="ignore"):
        log_w = np.log(np.asarray(weights, dtype=float))
    shape = (-1,) + (1,) * (doc_logprobs.ndim - 1)
    return _logsumexp(doc_logprobs + log_w.reshape(shape), axis=0)


class SequenceScorer(Protocol):
    """Teacher-forced log-probabilities of given continuations."""

    def sequence_logprobs(self, prompts: Sequence[str],
                          continuations: Sequence[Sequence[int]]) -> list[float]:
        """``log p(continuation | prompt)`` (sum over the continuation's tokens), pairwise."""
        ...


class TokenSession(Protocol):
    """Rows (the K documents of one or more queries) decoded in lock-step."""

    def logprobs(self) -> np.ndarray:
        """Next-token log-probabilities ``[rows, vocab]`` (full softmax)."""
        ...

    def append(self, token_ids: Sequence[int]) -> None:
        """Append one token to every row (``token_ids[r]`` to row r)."""
        ...


class NextTokenModel(Protocol):
    stop_token_ids: set[int]

    def start(self, prompts: Sequence[str]) -> TokenSession: ...

    def decode(self, token_ids: Sequence[int]) -> str: ...


@dataclass
class RagCandidate:
    text: str
    token_ids: list[int]
    doc_logprobs: list[float]
    marginal_logprob: float


@dataclass
class RagAnswer:
    """The decoded answer of one query.

    Attributes:
        text: the answer text (end token removed).
        token_ids: its tokens, with a final stop token when one ended it.
        logprob: ``log p(y|x)`` under the model's marginal (sequence or per-token mixture).
        doc_weights: ``p(d|x)`` used.
        candidates: RAG-Sequence: every distinct candidate with its per-document scores.
    """

    text: str
    token_ids: list[int]
    logprob: float
    doc_weights: list[float]
    candidates: list[RagCandidate] = field(default_factory=list)

    def to_dict(self) -> dict:
        out = {"logprob": finite_or_none(self.logprob), "doc_weights": self.doc_weights}
        if self.candidates:
            out["candidates"] = [{"text": c.text,
                                  "marginal_logprob": finite_or_none(c.marginal_logprob),
                                  "doc_logprobs": [finite_or_none(v) for v in c.doc_logprobs]}
                                 for c in self.candidates]
        return out


class RagSequence:
    """RAG-Sequence over a generating backend and a teacher-forcing scorer.

    Args:
        lm: any :class:`~selfrag.lm.base.LanguageModel` (greedy candidates, one per document).
        scorer: scores each candidate under each document.
        max_new_tokens: candidate length limit.
    """

    def __init__(self, lm: LanguageModel, scorer: SequenceScorer, max_new_tokens: int = 15):
        self.lm, self.scorer, self.max_new_tokens = lm, scorer, max_new_tokens

    def answer_batch(self, doc_prompts: Sequence[Sequence[str]],
                     weights: Sequence[np.ndarray], progress: bool = False) -> list[RagAnswer]:
        """Answer several queries: ``doc_prompts[q][d]`` is query q's prompt with document d.

        All candidates of all queries are generated in one backend call and scored in one
        scorer call.
        """
        flat = [p for prompts in doc_prompts for p in prompts]
        request = GenerationRequest(self.max_new_tokens)
        generations = self.lm.generate(flat, request, desc="rag candidates" if progress else None)
        per_query, start = [], 0
        for prompts in doc_prompts:
            unique: dict[tuple[int, ...], str] = {}
            for generation in generations[start:start + len(prompts)]:
                unique.setdefault(tuple(generation.token_ids), generation.text)
            per_query.append(unique)
            start += len(prompts)
        pairs = [(p, list(ids)) for prompts, unique in zip(doc_prompts, per_query)
                 for ids in unique for p in prompts]
        scores = self.scorer.sequence_logprobs([p for p, _ in pairs], [c for _, c in pairs])
        answers, offset = [], 0
        for prompts, unique, w in zip(doc_prompts, per_query, weights):
            candidates = []
            for ids, text in unique.items():
                doc_scores = np.array(scores[offset:offset + len(prompts)], dtype=float)
                offset += len(prompts)
                marginal = float(mix_logprobs(doc_scores, w))  # p(y|x) = sum_d p(d|x) p(y|x,d)
                candidates.append(RagCandidate(text, list(ids), doc_scores.tolist(), marginal))
            best = max(candidates, key=lambda c: c.marginal_logprob)  # first of equals
            answers.append(RagAnswer(best.text, best.token_ids, best.marginal_logprob,
                                     np.asarray(w, dtype=float).tolist(), candidates))
        return answers


class RagToken:
    """RAG-Token: greedy decoding on the per-step mixture of the K documents' distributions.

    The documents of several queries are decoded together (one row each, at most ``max_rows``
    rows per group; a query is never split); each query mixes only its own rows.

    Args:
        model: gives full next-token distributions for many prompts in lock-step.
        max_new_tokens: answer length limit.
        max_rows: rows (query x document prompts) decoded together.
    """

    def __init__(self, model: NextTokenModel, max_new_tokens: int = 15, max_rows: int = 16):
        self.model, self.max_new_tokens, self.max_rows = model, max_new_tokens, max(1, max_rows)

    def answer(self, prompts: Sequence[str], weights: np.ndarray) -> RagAnswer:
        return self._decode_group([prompts], [weights])[0]

    def answer_batch(self, doc_prompts: Sequence[Sequence[str]], weights: Sequence[np.ndarray],
                     progress: bool = False) -> list[RagAnswer]:
        from tqdm.auto import tqdm

        groups, current, rows = [], [], 0
        for index, prompts in enumerate(doc_prompts):
            if current and rows + len(prompts) > self.max_rows:
                groups.append(current)
                current, rows = [], 0
            current.append(index)
            rows += len(prompts)
        if current:
            groups.append(current)
        answers: list[RagAnswer] = []
        for group in tqdm(groups, desc="rag-token", disable=not progress, leave=False):
            answers += self._decode_group([doc_prompts[i] for i in group], [weights[i] for i in group])
        return answers

    def _decode_group(self, doc_prompts: Sequence[Sequence[str]],
                      weights: Sequence[np.ndarray]) -> list[RagAnswer]:
        bounds = np.cumsum([0] + [len(p) for p in doc_prompts])
        session = self.model.start([p for prompts in doc_prompts for p in prompts])
        stops = self.model.stop_token_ids
        tokens: list[list[int]] = [[] for _ in doc_prompts]
        totals = [0.0] * len(doc_prompts)
        for step in range(self.max_new_tokens):
            logprobs = session.logprobs()
            for q, w in enumerate(weights):
                if tokens[q] and tokens[q][-1] in stops:
                    continue
                # p(y_t|x,y_<t) = sum_d p(d|x) p(y_t|x,d,y_<t)  (Lewis et al. 2020, eq. 2)
                mixture = mix_logprobs(logprobs[bounds[q]:bounds[q + 1]], w)
                token = int(np.argmax(mixture))
                tokens[q].append(token)
                totals[q] += float(mixture[token])
            finished = all(t and t[-1] in stops for t in tokens)
            if finished or step == self.max_new_tokens - 1:
                break
            # Finished queries keep receiving their stop token; their rows are ignored.
            session.append([t[-1] for q, t in enumerate(tokens)
                            for _ in range(bounds[q + 1] - bounds[q])])
        answers = []
        for ids, total, w in zip(tokens, totals, weights):
            text_ids = ids[:-1] if ids and ids[-1] in stops else ids
            answers.append(RagAnswer(self.model.decode(text_ids), ids, total,
                                     np.asarray(w, dtype=float).tolist()))
        return answers


def finite_or_none(value: float) -> float | None:
    """JSON has no -inf: impossible candidates are written as ``null``."""
    return value if math.isfinite(value) else None
