"""Long-form Self-RAG: segment-level beam search (paper §3.3; the original
``run_long_form_static.py``), batched.

A segment is what the model writes after one passage until it asks for the next one. The search:

1. decides whether to retrieve at all (adaptive: one step per query, as in short form);
2. at each depth, continues every live hypothesis with each of its K passages: all hypotheses
   of all queries go to the backend in one call, stopping at the model's ``[Retrieval]`` token;
3. cuts each continuation at its segment boundary, decided by token ids (the original decided on
   decoded text, which loses the special tokens): the first ``[Retrieval]``, or with a threshold
   the first ``[No Retrieval]`` where ``p(Ret)/(p(Ret)+p(NoRet)) > threshold`` (the model's own
   ``[Continue to Use Evidence]`` and confident ``[No Retrieval]`` continue the segment);
4. scores the segment with ``w_rel·IsRel + w_sup·IsSup + w_use·IsUse (+ exp(mean log-prob))``
   (:func:`~selfrag.inference.scoring.score_candidate`), a hypothesis by the mean of its segment
   scores (length-neutral, so finished hypotheses compete fairly with deeper ones);
5. keeps the ``beam_width`` best children per query; children that ended (EOS or length) leave
   the beam for the finished pool; after ``max_depth`` segments the best of all wins.

The next segment's context is ``prompt + [Retrieval]<paragraph>p1</paragraph>segment1 + …``: the
interleaved format the model was trained on. With a retriever, each step searches again with
the question plus the text written so far (the original offers the same passages at every step,
issue #59). ``faithful=True`` hands over to :mod:`selfrag.inference.long_form_faithful`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from selfrag.inference.answers import strip_control_tokens
from selfrag.inference.query import PassageSearch, Query
from selfrag.inference.scoring import (
    CritiqueWeights,
    adaptive_decision,
    retrieval_probability,
    score_candidate,
)
from selfrag.inference.short_form import MODES
from selfrag.lm.base import Generation, GenerationRequest, LanguageModel
from selfrag.prompts import format_evidence
from selfrag.tokens import NO_RETRIEVAL, NO_SUPPORT, RETRIEVAL, reflection_token_ids


@dataclass(frozen=True)
class LongFormConfig:
    """Settings of long-form inference (flags of run_long_form_static.py)."""

    mode: str = "adaptive_retrieval"
    threshold: float | None = None
    max_new_tokens: int = 15
    beam_width: int = 2
    max_depth: int = 2
    ndocs: int = 10
    weights: CritiqueWeights = field(default_factory=CritiqueWeights)
    ignore_cont: bool = False
    faithful: bool = False

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {self.mode!r}")
        for name in ("max_new_tokens", "beam_width", "max_depth"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.mode != "no_retrieval" and self.ndocs < 1:
            raise ValueError("ndocs must be at least 1 when retrieval is on")


LongFormQuery = Query


@dataclass
class Segment:
    """One segment: raw text (reflection tokens kept), its passage and its scores."""

    text: str
    passage: dict | None = None
    scores: dict | None = None
    token_ids: list[int] = field(default_factory=list, repr=False)


@dataclass
class LongFormResult:
    """The best path of one query, plus the other final hypotheses for inspection."""

    segments: list[Segment]
    retrieved: bool
    score: float | None = None
    retrieval_probability: float | None = None
    alternatives: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        out = asdict(self)
        for segment in out["segments"]:
            segment.pop("token_ids")
        return out


@dataclass
class _Hypothesis:
    segments: list[Segment]
    context: str
    total: float = 0.0
    done: bool = False

    @property
    def score(self) -> float:
        return self.total / max(len(self.segments), 1)


class LongFormEngine:
    """Batched segment-level beam search. See the module docstring for the algorithm.

    Args:
        lm: any backend.
        config: search settings.
        retriever: optional; when given, passages are searched at every step with the question
            plus the text generated so far, instead of the queries' static passages.
    """

    def __init__(self, lm: LanguageModel, config: LongFormConfig,
                 retriever: PassageSearch | None = None):
        self.lm, self.config, self.retriever = lm, config, retriever
        self.ids = reflection_token_ids(lm.tokenizer)
        self.control_ids = tuple(self.ids.all_ids)
        eos = getattr(lm.tokenizer, "eos_token", None)
        self._extra_strip = (eos,) if eos else ()

    def strip(self, text: str) -> str:
        return strip_control_tokens(text, self.config.faithful, self._extra_strip)

    def kept_segments(self, result: LongFormResult) -> list[Segment]:
        """The best path's segments; with ``ignore_cont``, without those judged unsupported."""
        if not self.config.ignore_cont:
            return result.segments
        return [s for s in result.segments if NO_SUPPORT not in s.text]  # text keeps the tokens

    def answer(self, result: LongFormResult) -> str:
        """The answer text: segments without reflection tokens, joined by single spaces."""
        return " ".join(t for t in (self.strip(s.text).strip() for s in self.kept_segments(result)) if t)

    def run(self, queries: Sequence[LongFormQuery], progress: bool = False) -> list[LongFormResult]:
        if self.config.faithful:
            from selfrag.inference.long_form_faithful import OriginalTreeSearch

            return OriginalTreeSearch(self).run(queries, progress)
        decisions, probabilities = self._decide(queries, progress)
        results: list[LongFormResult | None] = [None] * len(queries)
        plain = [i for i, retrieve in enumerate(decisions) if not retrieve]
        request = GenerationRequest(self.config.max_new_tokens, control_ids=self.control_ids)
        generations = self.lm.generate([queries[i].prompt + NO_RETRIEVAL for i in plain], request,
                                       desc="no-retrieval answers" if progress else None) if plain else []
        for i, generation in zip(plain, generations):
            segment = Segment(generation.text, None, None, generation.token_ids)
            results[i] = LongFormResult([segment], False, None, probabilities[i])
        searched = [i for i, retrieve in enumerate(decisions) if retrieve]
        for i, result in zip(searched, self._beam_search([queries[i] for i in searched], progress)):
            result.retrieval_probability = probabilities[i]
            results[i] = result
        return results

    # -- retrieve at all? ------------------------------------------------------------------------
    def _decide(self, queries, progress) -> tuple[list[bool], list[float | None]]:
        can = [bool(q.passages) or (self.retriever is not None and bool(q.question)) for q in queries]
        if self.config.mode != "adaptive_retrieval":
            return [c and self.config.mode == "always_retrieve" for c in can], [None] * len(queries)
        first = self.lm.generate([q.prompt for q in queries],
                                 GenerationRequest(1, control_ids=self.control_ids),
                                 desc="retrieval decision" if progress else None)
        retrieval_id = self.ids.id(RETRIEVAL)
        pairs = [adaptive_decision(g, retrieval_id, self.config.threshold) for g in first]
        return [c and d for c, (d, _) in zip(can, pairs)], [p for _, p in pairs]

    # -- the search ------------------------------------------------------------------------------
    def _beam_search(self, queries, progress) -> list[LongFormResult]:
        cfg = self.config
        beams = [[_Hypothesis([], q.prompt)] for q in queries]
        finished: list[list[_Hypothesis]] = [[] for _ in queries]
        request = GenerationRequest(cfg.max_new_tokens, control_ids=self.control_ids,
                                    stop_token_ids=(self.ids.id(RETRIEVAL),))
        for depth in range(cfg.max_depth):
            live = [(q, h) for q, beam in enumerate(beams) for h in beam]
            if not live:
                break
            passages = self._passages(queries, live)
            owners = [(q, h, p) for (q, h), docs in zip(live, passages) for p in docs]
            generations = self.lm.generate([h.context + format_evidence(p) for _, h, p in owners],
                                           request, desc=f"depth {depth + 1}" if progress else None)
            children: list[list[_Hypothesis]] = [[] for _ in queries]
            for (q, h, p), generation in zip(owners, generations):
                children[q].append(self._extend(h, p, generation))
            for q, kids in enumerate(children):
                best = sorted(kids, key=lambda h: h.score, reverse=True)[: cfg.beam_width]
                finished[q] += [h for h in best if h.done]
                beams[q] = [h for h in best if not h.done]
        return [self._result(finished[q] + beams[q]) for q in range(len(queries))]

    def _passages(self, queries, live) -> list[Sequence[dict]]:
        if self.retriever is None:
            return [queries[q].passages[: self.config.ndocs] for q, _ in live]
        texts = [" ".join([queries[q].question, *(self.strip(s.text).strip() for s in h.segments)])
                 for q, h in live]
        return self.retriever.search_batch(texts, self.config.ndocs)

    def segment_end(self, generation: Generation) -> tuple[int, bool]:
        """Where the segment ends, and whether the model asks for more evidence there."""
        retrieval, no_retrieval = self.ids.id(RETRIEVAL), self.ids.id(NO_RETRIEVAL)
        for position, token in enumerate(generation.token_ids):
            if token == retrieval:
                return position, True
            if (token == no_retrieval and self.config.threshold is not None
                    and retrieval_probability(generation.control_logprobs[position]) > self.config.threshold):
                return position, True
        return len(generation.token_ids), False

    def _extend(self, parent: _Hypothesis, passage: dict, generation: Generation) -> _Hypothesis:
        end, wants_more = self.segment_end(generation)
        if end < len(generation.token_ids):
            text = self.lm.tokenizer.decode(generation.token_ids[:end], skip_special_tokens=False)
            generation = generation.prefix(end, text)
        scores = score_candidate(generation, self.ids, self.config.weights)
        segment = Segment(generation.text, passage, scores.to_dict(), generation.token_ids)
        return _Hypothesis(parent.segments + [segment],
                           parent.context + format_evidence(passage) + generation.text,
                           parent.total + scores.final, done=not wants_more)

    @staticmethod
    def _result(hypotheses: list[_Hypothesis]) -> LongFormResult:
        ranked = sorted(hypotheses, key=lambda h: h.score, reverse=True)  # stable: first of equals
        best = ranked[0]
        alternatives = [{"score": h.score, "segments": [s.text for s in h.segments]} for h in ranked[1:]]
        return LongFormResult(best.segments, True, best.score, None, alternatives)
