"""Long-form Self-RAG: segment-level beam search (paper §3.3; the original
``run_long_form_static.py``), batched.

A segment is what the model writes after one passage until it asks for the next one. The search:

1. decides whether to retrieve at all (:mod:`selfrag.inference.decision`, as in short form);
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
issue #59). The original's own tree search is :mod:`selfrag.inference.long_form_faithful`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from selfrag.inference.answers import strip_control_tokens, tokenizer_eos
from selfrag.inference.decision import DecisionPolicy, decide
from selfrag.inference.long_form_types import LongFormConfig, LongFormQuery, LongFormResult, Segment
from selfrag.inference.query import PassageSearch
from selfrag.inference.scoring import retrieval_probability, score_candidate
from selfrag.lm.base import Generation, GenerationRequest, LanguageModel
from selfrag.prompts import format_evidence
from selfrag.tokens import NO_RETRIEVAL, RETRIEVAL, ReflectionTokenIds


@dataclass
class _Hypothesis:
    segments: list[Segment]
    context: str
    total: float = 0.0
    done: bool = False

    @property
    def score(self) -> float:
        return self.total / max(len(self.segments), 1)


class SegmentBeamSearch:
    """Batched segment-level beam search. See the module docstring for the algorithm.

    Args:
        lm: any backend.
        config: search settings.
        ids: the reflection tokens' ids in ``lm``'s tokenizer.
        retriever: optional; when given, passages are searched at every step with the question
            plus the text generated so far, instead of the queries' static passages.
    """

    def __init__(self, lm: LanguageModel, config: LongFormConfig, ids: ReflectionTokenIds,
                 retriever: PassageSearch | None = None):
        self.lm, self.config, self.ids, self.retriever = lm, config, ids, retriever
        self.control_ids = tuple(ids.all_ids)
        self.policy = DecisionPolicy(config.mode, config.threshold)
        self._extra_strip = tokenizer_eos(lm.tokenizer)

    def run(self, queries: Sequence[LongFormQuery], progress: bool = False) -> list[LongFormResult]:
        decisions = decide(queries, self.policy, self.lm, self.ids, self.retriever,
                           desc="retrieval decision" if progress else None)
        probabilities = decisions.probabilities
        results: list[LongFormResult | None] = [None] * len(queries)
        plain = [i for i, retrieve in enumerate(decisions.retrieve) if not retrieve]
        request = GenerationRequest(self.config.max_new_tokens, control_ids=self.control_ids)
        generations = []
        if plain:
            generations = self.lm.generate([queries[i].prompt + NO_RETRIEVAL for i in plain],
                                           request, desc="no-retrieval answers" if progress else None)
        for i, generation in zip(plain, generations):
            segment = Segment(generation.text, None, None, generation.token_ids)
            results[i] = LongFormResult([segment], False, None, probabilities[i])
        searched = [i for i, retrieve in enumerate(decisions.retrieve) if retrieve]
        for i, result in zip(searched, self._beam_search([queries[i] for i in searched], progress)):
            result.retrieval_probability = probabilities[i]
            results[i] = result
        return results

    def _beam_search(self, queries, progress) -> list[LongFormResult]:
        cfg = self.config
        beams = [[_Hypothesis([], q.prompt)] for q in queries]
        finished: list[list[_Hypothesis]] = [[] for _ in queries]
        request = GenerationRequest(cfg.max_new_tokens, control_ids=self.control_ids,
                                    stop_token_ids=(self.ids.id(RETRIEVAL),),
                                    keep_cache=True)  # a node's children begin with it
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
        texts = [" ".join([queries[q].question, *(self._strip(s.text).strip() for s in h.segments)])
                 for q, h in live]
        return self.retriever.search_batch(texts, self.config.ndocs)

    def _strip(self, text: str) -> str:
        return strip_control_tokens(text, self.config.faithful, self._extra_strip)

    def segment_end(self, generation: Generation) -> tuple[int, bool]:
        """Where the segment ends, and whether the model asks for more evidence there."""
        retrieval, no_retrieval = self.ids.id(RETRIEVAL), self.ids.id(NO_RETRIEVAL)
        threshold = self.config.threshold
        for position, token in enumerate(generation.token_ids):
            if token == retrieval:
                return position, True
            if (token == no_retrieval and threshold is not None
                    and retrieval_probability(generation.control_logprobs[position]) > threshold):
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
        alternatives = [{"score": h.score, "segments": [s.text for s in h.segments]}
                        for h in ranked[1:]]
        return LongFormResult(best.segments, True, best.score, None, alternatives)
