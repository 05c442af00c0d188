"""The retrieval decision, written once: which queries retrieve before they answer.

Modes (the original's ``--mode``): ``always_retrieve`` retrieves for every query that can,
``no_retrieval`` for none, ``adaptive_retrieval`` lets the model decide from a first pass over
the plain prompt, by one of three rules:

- :data:`PAPER` (the default): one step; ``p(Ret)/(p(Ret)+p(NoRet)) > threshold`` at the first
  position, or without a threshold the model's greedy first token is ``[Retrieval]`` (paper
  §3.3 and Appendix A.3; :func:`~selfrag.inference.scoring.adaptive_decision`).
- :data:`ORIGINAL_SHORT_FORM` (short form, ``--faithful``; the original ``run_short_form.py``,
  ``call_model_rerank_w_scores_batch``): a full-length first pass whose text is kept; with a
  threshold the ratio of LOG-probabilities at the first position
  (:func:`~selfrag.inference.scoring.faithful_retrieval_ratio`), without one ``[Retrieval]``
  anywhere in the text. The first pass runs in ``no_retrieval`` mode too.
- :data:`ORIGINAL_LONG_FORM` (long form, ``--faithful``; the original
  ``run_long_form_static.py``, ``call_model_beam_batch``): a 25-token first pass;
  ``[Retrieval]`` before its first blank line and, only with a threshold,
  ``p(Ret)/(p(Ret)+p(NoRet)) > threshold``.

A query can retrieve when it has passages, or a retriever and a question to search with.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from selfrag.inference.query import PassageSearch, Query
from selfrag.inference.scoring import (
    adaptive_decision,
    faithful_retrieval_ratio,
    retrieval_probability,
)
from selfrag.lm.base import Generation, GenerationRequest, LanguageModel
from selfrag.tokens import RETRIEVAL, ReflectionTokenIds

MODES = ("adaptive_retrieval", "always_retrieve", "no_retrieval")
PAPER = "paper"
ORIGINAL_SHORT_FORM = "original_short_form"
ORIGINAL_LONG_FORM = "original_long_form"
RULES = (PAPER, ORIGINAL_SHORT_FORM, ORIGINAL_LONG_FORM)
ORIGINAL_LONG_FORM_TOKENS = 25  # length of the original long-form first generation

#: ``generate(prompts, request)``: how the first pass reaches the backend.
Generate = Callable[[list[str], GenerationRequest], list[Generation]]


@dataclass(frozen=True)
class DecisionPolicy:
    """How queries decide to retrieve.

    Attributes:
        mode: one of :data:`MODES`.
        threshold: the adaptive rule's threshold (see the module docstring), or ``None``.
        rule: one of :data:`RULES`.
        first_pass_tokens: length of the first pass over the plain prompt.
    """

    mode: str = "adaptive_retrieval"
    threshold: float | None = None
    rule: str = PAPER
    first_pass_tokens: int = 1

    def __post_init__(self):
        check_mode(self.mode)
        if self.rule not in RULES:
            raise ValueError(f"rule must be one of {RULES}, not {self.rule!r}")


def check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")


@dataclass
class Decisions:
    """Per query: whether it retrieves, ``p(Ret)/(p(Ret)+p(NoRet))`` at the first position (when a
    first pass ran) and the first pass's text (kept by :data:`ORIGINAL_SHORT_FORM` only)."""

    retrieve: list[bool]
    probabilities: list[float | None]
    initial: list[str | None]


def can_retrieve(query: Query, retriever: PassageSearch | None) -> bool:
    """Whether ``query`` has passages, or a retriever and a question to search with."""
    return bool(query.passages) or (retriever is not None and bool(query.question))


def decide(queries: Sequence[Query], policy: DecisionPolicy, lm: LanguageModel,
           ids: ReflectionTokenIds, retriever: PassageSearch | None = None,
           generate: Generate | None = None, desc: str | None = None) -> Decisions:
    """Decide for every query, with at most one backend call (the first pass, batched).

    Args:
        generate: how the first pass reaches the backend (default ``lm.generate`` with ``desc``).
    """
    n = len(queries)
    if policy.mode == "always_retrieve":
        return Decisions([can_retrieve(q, retriever) for q in queries], [None] * n, [None] * n)
    if policy.mode == "no_retrieval" and policy.rule != ORIGINAL_SHORT_FORM:
        return Decisions([False] * n, [None] * n, [None] * n)
    if generate is None:
        def generate(prompts, request):
            return lm.generate(prompts, request, desc=desc)
    # the passage prompts that follow begin with these prompts: keep_cache lets a backend reuse them
    request = GenerationRequest(policy.first_pass_tokens, control_ids=tuple(ids.all_ids),
                                keep_cache=True)
    first = generate([q.prompt for q in queries], request)
    keep_text = policy.rule == ORIGINAL_SHORT_FORM
    decisions = Decisions([], [], [])
    for query, generation in zip(queries, first):
        decisions.probabilities.append(retrieval_probability(generation.control_logprobs[0]))
        decisions.initial.append(generation.text if keep_text else None)
        decisions.retrieve.append(policy.mode == "adaptive_retrieval"
                                  and can_retrieve(query, retriever)
                                  and _rule(policy, generation, ids, lm))
    return decisions


def _rule(policy: DecisionPolicy, generation: Generation, ids: ReflectionTokenIds,
          lm: LanguageModel) -> bool:
    """Whether the model asks for retrieval in its first pass, by ``policy.rule``."""
    retrieval_id, threshold = ids.id(RETRIEVAL), policy.threshold
    if policy.rule == PAPER:
        return adaptive_decision(generation, retrieval_id, threshold)[0]
    if policy.rule == ORIGINAL_SHORT_FORM:
        if threshold is not None:  # the original's log-prob ratio
            return faithful_retrieval_ratio(generation.control_logprobs[0]) > threshold
        return retrieval_id in generation.token_ids  # its intended rule: [Retrieval] in the text
    asks = retrieval_id in ids_before_blank_line(generation, lm.tokenizer)
    return (asks and threshold is not None
            and retrieval_probability(generation.control_logprobs[0]) > threshold)


def ids_before_blank_line(generation: Generation, tokenizer) -> list[int]:
    """The generated ids before the text first holds a blank line (special tokens kept)."""
    kept, text = [], ""
    for token in generation.token_ids:
        text += tokenizer.decode([token], skip_special_tokens=False)
        if "\n\n" in text:
            break
        kept.append(token)
    return kept
