"""Critique scores and the retrieval decision, from reflection-token probabilities.

The only place these formulas live; short-form and long-form inference both call them.
Inputs are :class:`~selfrag.lm.base.Generation` objects whose ``control_logprobs`` columns follow
:data:`~selfrag.tokens.REFLECTION_TOKENS` (request ``control_ids = ReflectionTokenIds.all_ids``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from selfrag.lm.base import Generation
from selfrag.tokens import (
    IRRELEVANT,
    ISSUP_GROUP,
    ISUSE_GROUP,
    NO_RETRIEVAL,
    REFLECTION_TOKENS,
    RELEVANT,
    RETRIEVAL,
    ReflectionTokenIds,
)

COLUMN = {token: i for i, token in enumerate(REFLECTION_TOKENS)}
#: IsSup weights: fully 1, partially 0.5, no support 0 (as the original's scorer).
SUPPORT_WEIGHTS = (1.0, 0.5, 0.0)
#: IsUse weights for [Utility:1] ... [Utility:5] (as the original's scorer).
UTILITY_WEIGHTS = (-1.0, -0.5, 0.0, 0.5, 1.0)


@dataclass(frozen=True)
class CritiqueWeights:
    """How candidates are ranked: ``final = [exp(seq)] + w_rel*s_rel + w_sup*s_sup + w_use*s_use``.

    The paper's weights are 1.0 / 1.0 / 0.5 (paper §4.3); the original short-form CLI
    defaults to ``w_use=1.0``.
    """

    w_rel: float = 1.0
    w_sup: float = 1.0
    w_use: float = 0.5
    use_support: bool = True
    use_utility: bool = True
    use_seqscore: bool = False


@dataclass(frozen=True)
class CandidateScores:
    relevance: float
    support: float
    utility: float
    mean_logprob: float
    final: float

    def to_dict(self) -> dict:
        return asdict(self)


def group_distribution(row: np.ndarray, group: Sequence[str]) -> np.ndarray:
    """Probabilities of ``group``'s tokens at one position, renormalised within the group.

    Computed from log-probabilities (a stable softmax), so tiny probabilities keep their ratio.
    A group with zero mass everywhere gives all zeros.
    """
    logps = np.array([row[COLUMN[t]] for t in group], dtype=float)
    top = logps.max()
    if not np.isfinite(top):
        return np.zeros(len(group))
    weights = np.exp(logps - top)
    return weights / weights.sum()


def first_position(token_ids: Sequence[int], wanted: set[int]) -> int | None:
    return next((t for t, token in enumerate(token_ids) if token in wanted), None)


def relevance_score(generation: Generation) -> float:
    """``P([Relevant]) / (P([Relevant]) + P([Irrelevant]))`` at the first generated position."""
    if not generation.token_ids:
        return 0.0
    return float(group_distribution(generation.control_logprobs[0], (IRRELEVANT, RELEVANT))[1])


def _weighted_at_first(generation: Generation, ids: ReflectionTokenIds, group: Sequence[str],
                       weights: Sequence[float]) -> float:
    """``sum_i w_i * P(token_i) / S`` over ``group`` at its first generated token; 0 if none."""
    position = first_position(generation.token_ids, set(ids.ids(group)))
    if position is None:
        return 0.0
    probs = group_distribution(generation.control_logprobs[position], group)
    return float(np.dot(probs, weights))


def support_score(generation: Generation, ids: ReflectionTokenIds) -> float:
    """At the first generated IsSup token: ``P(full)/S + 0.5 * P(partial)/S``; 0 if none."""
    return _weighted_at_first(generation, ids, ISSUP_GROUP, SUPPORT_WEIGHTS)


def utility_score(generation: Generation, ids: ReflectionTokenIds) -> float:
    """At the first generated IsUse token: ``sum_i w_i * P([Utility:i]) / S``; 0 if none."""
    return _weighted_at_first(generation, ids, ISUSE_GROUP, UTILITY_WEIGHTS)


def mean_logprob(generation: Generation) -> float:
    """Cumulative log-probability over the number of generated tokens (at least 1)."""
    return generation.cumulative_logprob / max(len(generation.token_ids), 1)


def score_candidate(generation: Generation, ids: ReflectionTokenIds,
                    weights: CritiqueWeights) -> CandidateScores:
    """Paper Eq. 4 as the original ``call_model_rerank_w_scores_batch`` implements it."""
    relevance = relevance_score(generation)
    support = support_score(generation, ids) if weights.use_support else 0.0
    utility = utility_score(generation, ids) if weights.use_utility else 0.0
    seq = mean_logprob(generation)
    return CandidateScores(relevance, support, utility, seq,
                           final_score(relevance, support, utility, seq, weights))


def final_score(relevance: float, support: float, utility: float, mean_logprob: float,
                weights: CritiqueWeights) -> float:
    """The candidate's score from its parts: ``w_rel*rel``, plus ``w_sup*sup`` with
    ``use_support``, ``w_use*use`` with ``use_utility`` and ``exp(mean_logprob)`` with
    ``use_seqscore``."""
    final = weights.w_rel * relevance
    if weights.use_support:
        final += weights.w_sup * support
    if weights.use_utility:
        final += weights.w_use * utility
    if weights.use_seqscore:
        final += math.exp(mean_logprob)
    return final


def retrieval_probability(row: np.ndarray) -> float:
    """``p(Ret) / (p(Ret) + p(NoRet))`` at one position (paper A.3)."""
    return float(group_distribution(row, (NO_RETRIEVAL, RETRIEVAL))[1])


def adaptive_decision(generation: Generation, retrieval_id: int,
                      threshold: float | None) -> tuple[bool, float]:
    """Retrieve or not, from the first generated position (paper A.3).

    With a threshold: ``p(Ret)/(p(Ret)+p(NoRet)) > threshold``. Without: the model's own greedy
    first token is ``[Retrieval]``. Returns the decision and the probability ratio.
    """
    probability = retrieval_probability(generation.control_logprobs[0])
    if threshold is not None:
        return probability > threshold, probability
    return generation.token_ids[:1] == [retrieval_id], probability


def faithful_retrieval_ratio(row: np.ndarray) -> float:
    """The released code's rule: the ratio of LOG-probabilities ``lp_R / (lp_R + lp_N)``.

    For log-probs below zero it retrieves for a threshold t iff ``p_R < p_N ** (t / (1 - t))``.
    The log-probs are used as they are: the original's -100 default for an id missing from its
    top-k dict is always overwritten by the real value (it asks for the whole vocabulary). An
    undefined ratio (``-inf / -inf`` when ``p_R`` is 0, or ``0 / 0``) is nan, which compares
    false with every threshold: no retrieval.
    """
    lp_r = float(row[COLUMN[RETRIEVAL]])
    lp_n = float(row[COLUMN[NO_RETRIEVAL]])
    total = lp_r + lp_n
    if total == 0 or (math.isinf(lp_r) and math.isinf(total)):
        return math.nan
    return lp_r / total
