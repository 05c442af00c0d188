"""Short-form Self-RAG inference (PopQA, TriviaQA, PubHealth, ARC-Challenge), batched.

For a list of queries the engine makes at most two calls to the backend, whatever their number:

1. the retrieval decision (adaptive mode only, :mod:`selfrag.inference.decision`): one forward
   step per query gives ``p([Retrieval])`` and ``p([No Retrieval])`` at the first position;
2. every continuation at once: ``prompt + [Retrieval]<paragraph>…</paragraph>`` for each passage
   of each retrieving query, ``prompt + [No Retrieval]`` for the others.

Candidates are scored with :mod:`selfrag.inference.scoring` and the answer is chosen as the
original ``call_model_rerank_w_scores_batch`` chose it. ``faithful=True`` reproduces the
original's decisions: its full-length initial generation, its log-prob-ratio threshold, its
token-presence rule without threshold, raw answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from selfrag.inference.answers import (
    CLOSED_SET_TASKS,
    aggregate_closed_set,
    clean_prediction,
    strip_control_tokens,
    tokenizer_eos,
)
from selfrag.inference.decision import (
    ORIGINAL_SHORT_FORM,
    PAPER,
    DecisionPolicy,
    check_mode,
    decide,
)
from selfrag.inference.query import PassageSearch, Query
from selfrag.inference.scoring import CritiqueWeights, final_score, score_candidate
from selfrag.lm.base import Generation, GenerationRequest, LanguageModel
from selfrag.prompts import canonical_task, format_evidence
from selfrag.tokens import NO_RETRIEVAL, reflection_token_ids


@dataclass(frozen=True)
class ShortFormConfig:
    """Settings of short-form inference.

    Attributes:
        mode: ``adaptive_retrieval`` (the model decides), ``always_retrieve`` or ``no_retrieval``.
        threshold: adaptive rule ``p(Ret)/(p(Ret)+p(NoRet)) > threshold``; ``None`` retrieves
            when the model's own greedy first token is ``[Retrieval]``.
        max_new_tokens: length limit of every continuation.
        weights: critique weights and switches.
        task: ``fever``/``arc_c`` pool candidate scores per answer; other tasks take the best one.
            Aliases are canonicalised (``pubhealth`` is ``fever``).
        faithful: reproduce the original's decisions and raw answers.
    """

    mode: str = "adaptive_retrieval"
    threshold: float | None = None
    max_new_tokens: int = 15
    weights: CritiqueWeights = field(default_factory=CritiqueWeights)
    task: str | None = None
    faithful: bool = False

    def __post_init__(self):
        object.__setattr__(self, "task", canonical_task(self.task))  # frozen: set once, here
        check_mode(self.mode)
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be at least 1")


ShortFormQuery = Query


@dataclass
class Candidate:
    pred: str
    score: float
    ctx: dict
    scores: dict


@dataclass
class ShortFormResult:
    """Outcome for one query.

    Attributes:
        prediction: the answer (control tokens stripped unless faithful for open tasks).
        retrieved: whether evidence was used.
        retrieval_probability: ``p(Ret)/(p(Ret)+p(NoRet))`` at the first position, when computed.
        no_retrieval: the ``[No Retrieval]`` continuation (faithful: the initial generation).
        candidates: one per passage when retrieving.
        option_scores: closed-set score totals per answer.
        answer: the final answer, the prediction cleaned as the original's ``main`` cleans it
            (:func:`~selfrag.inference.answers.clean_prediction`): what a run scores and writes.
    """

    prediction: str
    retrieved: bool
    retrieval_probability: float | None = None
    no_retrieval: str | None = None
    candidates: list[Candidate] = field(default_factory=list)
    option_scores: dict | None = None
    answer: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


class ShortFormEngine:
    """Batched short-form inference.

    Args:
        lm: any backend.
        config: decision, scoring and answer settings.
        retriever: optional; queries without passages that decide to retrieve get the top
            ``n_docs`` passages for their question, searched in one batch. Only those queries
            are searched: adaptive retrieval saves retrieval work too.
        n_docs: passages retrieved per query.
    """

    def __init__(self, lm: LanguageModel, config: ShortFormConfig,
                 retriever: PassageSearch | None = None, n_docs: int = 10):
        self.lm, self.config = lm, config
        self.retriever, self.n_docs = retriever, n_docs
        self.ids = reflection_token_ids(lm.tokenizer)
        self.control_ids = tuple(self.ids.all_ids)
        # Default: one step suffices for the decision. Faithful: the original's full initial pass.
        self.policy = DecisionPolicy(
            config.mode, config.threshold, ORIGINAL_SHORT_FORM if config.faithful else PAPER,
            config.max_new_tokens if config.faithful else 1)
        self._extra_strip = tokenizer_eos(lm.tokenizer)

    def run(self, queries: Sequence[ShortFormQuery], progress: bool = False) -> list[ShortFormResult]:
        found = decide(queries, self.policy, self.lm, self.ids, self.retriever,
                       desc="retrieval decision" if progress else None)
        decisions, probabilities, initial = found.retrieve, found.probabilities, found.initial
        passages = self._passages(queries, decisions)
        prompts, owners = [], []
        for index, (query, retrieve) in enumerate(zip(queries, decisions)):
            if retrieve:
                prompts += [query.prompt + format_evidence(p) for p in passages[index]]
                owners += [(index, p) for p in passages[index]]
            else:
                prompts.append(query.prompt + NO_RETRIEVAL)
                owners.append((index, None))
        request = GenerationRequest(self.config.max_new_tokens, control_ids=self.control_ids)
        generations = self.lm.generate(prompts, request, desc="answers" if progress else None)
        grouped: list[list[tuple[dict | None, Generation]]] = [[] for _ in queries]
        for (index, passage), generation in zip(owners, generations):
            grouped[index].append((passage, generation))
        return [self.select_answer(group, probabilities[i], initial[i]) for i, group in enumerate(grouped)]

    def _passages(self, queries, decisions) -> list[Sequence[dict]]:
        """Given passages, or retrieved ones for retrieving queries that have none."""
        passages = [q.passages for q in queries]
        missing = [i for i, (q, r) in enumerate(zip(queries, decisions)) if r and not q.passages]
        if missing:
            found = self.retriever.search_batch([queries[i].question for i in missing], self.n_docs)
            for i, docs in zip(missing, found):
                passages[i] = docs
        return passages

    # -- pick the answer ---------------------------------------------------------------------------
    def _strip(self, text: str) -> str:
        return strip_control_tokens(text, self.config.faithful, self._extra_strip)

    def select_answer(self, group, probability, initial=None) -> ShortFormResult:
        """Pick the answer of one query from its (passage, generation) pairs, as the original; a
        passage of ``None`` marks the single [No Retrieval] continuation."""
        result = self._select(group, probability, initial)
        result.answer = clean_prediction(result.prediction, self.config.faithful)
        return result

    def _select(self, group, probability, initial) -> ShortFormResult:
        cfg = self.config
        if group[0][0] is None:  # no retrieval: the [No Retrieval] continuation is the answer
            text = group[0][1].text
            return ShortFormResult(self._strip(text), False, probability,
                                   initial if cfg.faithful else text)
        candidates = []
        for passage, generation in group:
            scores = score_candidate(generation, self.ids, cfg.weights)
            candidates.append(Candidate(generation.text, scores.final, passage, scores.to_dict()))
        return choose_answer(candidates, probability, initial, cfg, self._extra_strip)


def choose_answer(candidates: list[Candidate], probability: float | None, initial: str | None,
                  config: ShortFormConfig, extra_strip: Sequence[str] = ()) -> ShortFormResult:
    """The answer among scored passage candidates, as the original
    ``call_model_rerank_w_scores_batch`` chose it: the best candidate, or for closed-set tasks
    the answer whose candidates' scores sum highest. ``extra_strip``: the tokenizer's EOS."""
    def strip(text: str) -> str:
        return strip_control_tokens(text, config.faithful, extra_strip)

    if config.task in CLOSED_SET_TASKS:
        answers = [strip(c.pred) for c in candidates]
        prediction, totals = aggregate_closed_set(answers, [c.score for c in candidates],
                                                  config.task, config.faithful)
        return ShortFormResult(prediction, True, probability, initial, candidates, totals)
    best = max(candidates, key=lambda c: c.score)  # first of equals, as the original
    prediction = best.pred if config.faithful else strip(best.pred)
    return ShortFormResult(prediction, True, probability, initial, candidates)


def rescore(result: dict, config: ShortFormConfig, extra_strip: Sequence[str] = ()) -> dict:
    """``result`` (a :meth:`ShortFormResult.to_dict`) as a run with ``config.weights`` gives it,
    from its candidates' stored score parts: the continuations do not depend on the weights,
    only the choice among them does, so paper Table 3's "no critique" ablations need no new
    generation. The stored run must have computed every part the weights use (IsSup and IsUse
    are 0 where it did not); a result without retrieval is returned as it is."""
    if not result["retrieved"]:
        return result
    candidates = []
    for stored in result["candidates"]:
        parts = {k: v for k, v in stored["scores"].items() if k != "final"}
        final = final_score(**parts, weights=config.weights)
        candidates.append(Candidate(stored["pred"], final, stored["ctx"],
                                    {**parts, "final": final}))
    chosen = choose_answer(candidates, result["retrieval_probability"], result["no_retrieval"],
                           config, extra_strip)
    chosen.answer = clean_prediction(chosen.prediction, config.faithful)
    return chosen.to_dict()
