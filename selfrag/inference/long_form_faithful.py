"""The original repository's long-form tree search, reproduced for comparison (``--faithful``).

As the original ``call_model_beam_batch`` and ``run_step_generation_batch``, quirks included: the
initial decision needs ``[Retrieval]`` in a 25-token first generation; continuations run the full
``max_new_tokens`` with no stop; a ``[No Retrieval]`` is re-labelled ``[Retrieval]`` where
``(p(Ret)+p(Cont)) / (p(Ret)+p(NoRet)) > threshold``; a segment is the text before the first
``[Retrieval]``; the step score is ``1.0·IsRel + 1.0·IsSup`` (the weights flags are ignored and
utility is always 0), computed over the whole continuation; a child's score is its step score times
its parent's; the stored context of child ``i > 0`` carries its previous sibling's segment (sibling
contamination); only nodes containing ``[Retrieval]`` are expanded; at most ``max_depth - 1``
expansions; the deepest non-empty level wins.

With an online retriever (the original only had static passages), each query that retrieves is
searched once, with its question, for ``ndocs`` passages, which then serve every depth as the
static ones would: the original's search over the passages it was given.

Reflection tokens are detected by token id (equivalently, in text decoded with special tokens
kept): the behaviour the original's README describes. Unlike the original, levels are batched
across nodes and queries (``one_node_per_call`` restores its one-call-per-node schedule, for the
benchmark).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

from selfrag.inference.decision import (
    ORIGINAL_LONG_FORM,
    ORIGINAL_LONG_FORM_TOKENS,
    DecisionPolicy,
    decide,
)
from selfrag.inference.long_form_types import LongFormConfig, LongFormQuery, LongFormResult, Segment
from selfrag.inference.query import PassageSearch
from selfrag.inference.scoring import COLUMN, relevance_score, support_score
from selfrag.lm.base import Generation, GenerationRequest, LanguageModel
from selfrag.prompts import format_evidence
from selfrag.tokens import CONTINUE_EVIDENCE, NO_RETRIEVAL, RETRIEVAL, ReflectionTokenIds


@dataclass
class _Node:
    prompt: str
    pred: str                      # raw text, after re-labelling
    processed: str                 # the segment: text before the first [Retrieval]
    score: float | None
    ctx: dict | None
    parent: _Node | None = None


def cut_at_blank_line(text: str) -> str:
    return text.split("\n\n")[0]


class OriginalTreeSearch:
    """The original's long-form tree search (see the module docstring).

    Args:
        lm: any backend.
        config: search settings (``weights`` only for ``use_support``, as the original).
        ids: the reflection tokens' ids in ``lm``'s tokenizer.
        retriever: optional; queries without passages search once with their question.
        one_node_per_call: one backend call per node, the original's schedule (benchmark).
    """

    def __init__(self, lm: LanguageModel, config: LongFormConfig, ids: ReflectionTokenIds,
                 retriever: PassageSearch | None = None, one_node_per_call: bool = False):
        self.lm, self.config, self.ids, self.retriever = lm, config, ids, retriever
        self.control_ids = tuple(ids.all_ids)
        self.policy = DecisionPolicy(config.mode, config.threshold, ORIGINAL_LONG_FORM,
                                     ORIGINAL_LONG_FORM_TOKENS)
        self.one_node_per_call = one_node_per_call

    def _generate(self, groups: list[list[str]], request: GenerationRequest,
                  desc=None) -> list[Generation]:
        """Continue groups of prompts (a node's K passages, or one query's prompt): in one call,
        or one call per group as the original does."""
        if self.one_node_per_call:
            return [g for group in groups for g in self.lm.generate(group, request)]
        prompts = [p for group in groups for p in group]
        return self.lm.generate(prompts, request, desc=desc) if prompts else []

    def _continue(self, groups: list[list[str]], desc=None) -> list[Generation]:
        """Continuations of ``max_new_tokens`` with no stop, as the original."""
        request = GenerationRequest(self.config.max_new_tokens, control_ids=self.control_ids,
                                    keep_cache=True)  # a node's children begin with it
        return self._generate(groups, request, desc)

    def run(self, queries: Sequence[LongFormQuery], progress: bool = False) -> list[LongFormResult]:
        decisions = decide(queries, self.policy, self.lm, self.ids, self.retriever,
                           generate=lambda prompts, request: self._generate([[p] for p in prompts],
                                                                            request))
        probabilities = decisions.probabilities
        results: list[LongFormResult | None] = [None] * len(queries)
        plain = [i for i, d in enumerate(decisions.retrieve) if not d]
        prompts = [[queries[i].prompt + NO_RETRIEVAL] for i in plain]
        for i, g in zip(plain, self._continue(prompts)):
            results[i] = LongFormResult([Segment(cut_at_blank_line(g.text), None, None, g.token_ids)],
                                        False, None, probabilities[i])
        searched = [i for i, d in enumerate(decisions.retrieve) if d]
        found = self._retrieve_once([queries[i] for i in searched])
        for i, paths in zip(searched, self._search(found, progress)):
            best, *others = paths
            segments = [Segment(n.processed, n.ctx, {"final": n.score}) for n in best[1:]]
            alternatives = [{"score": p[-1].score, "segments": [n.processed for n in p[1:]]}
                            for p in others]
            results[i] = LongFormResult(segments, True, best[-1].score, probabilities[i], alternatives)
        return results

    def _retrieve_once(self, queries):
        """Queries without passages get ``ndocs`` passages searched with their question (one
        batch for all of them); the others keep theirs."""
        missing = [i for i, q in enumerate(queries) if not q.passages]
        if not missing or self.retriever is None:
            return list(queries)
        hits = self.retriever.search_batch([queries[i].question for i in missing],
                                           self.config.ndocs)
        queries = list(queries)
        for i, passages in zip(missing, hits):
            queries[i] = replace(queries[i], passages=passages)
        return queries

    def _search(self, queries, progress) -> list[list[list[_Node]]]:
        cfg = self.config
        levels = [[[_Node(q.prompt, RETRIEVAL, "", None, None)]] for q in queries]
        depth = 1
        while depth < cfg.max_depth:  # at most max_depth - 1 expansions, as the original
            work = [(q, node) for q, lv in enumerate(levels) for node in lv[-1] if RETRIEVAL in node.pred]
            if not work:
                break
            prompts = [[node.prompt + node.processed + format_evidence(p) for p in queries[q].passages]
                       for q, node in work]
            generations = iter(self._continue(prompts, f"depth {depth}" if progress else None))
            new_levels: list[list[_Node]] = [[] for _ in queries]
            for q, node in work:
                new_levels[q] += self._children(node, queries[q].passages, generations)
            for q, children in enumerate(new_levels):
                if children:
                    levels[q].append(sorted(children, key=lambda n: n.score, reverse=True)[: cfg.beam_width])
            depth += 1
        return [[self._path(node) for node in lv[-1]] for lv in levels]

    def _children(self, parent: _Node, passages, generations) -> list[_Node]:
        children, previous = [], parent.processed
        for passage in passages:
            g = next(generations)
            pred = self._relabel(g)
            processed = pred.split(RETRIEVAL)[0]
            step = relevance_score(g)
            if self.config.weights.use_support:
                step += support_score(g, self.ids)
            # The original hard-coded 1.0 / 1.0 / 0.5, with a utility score that is always 0.
            score = step * (parent.score if parent.score is not None else 1.0)
            child = _Node(parent.prompt + previous, pred, processed, score, passage, parent)
            children.append(child)
            previous = processed  # the original's sibling contamination
        return children

    def _relabel(self, g: Generation) -> str:
        """Turn confident ``[No Retrieval]`` into ``[Retrieval]`` and rebuild the text."""
        if NO_RETRIEVAL not in g.text:
            return g.text
        flags = []
        no_retrieval = self.ids.id(NO_RETRIEVAL)
        threshold = self.config.threshold
        for position, token in enumerate(g.token_ids):
            if token == no_retrieval:
                row = g.control_logprobs[position]
                p = {t: math.exp(row[COLUMN[t]]) for t in (RETRIEVAL, NO_RETRIEVAL, CONTINUE_EVIDENCE)}
                ratio = (p[RETRIEVAL] + p[CONTINUE_EVIDENCE]) / (p[RETRIEVAL] + p[NO_RETRIEVAL])
                flags.append(threshold is not None and ratio > threshold)
        pieces = g.text.split(NO_RETRIEVAL)
        rebuilt = "".join(piece + (RETRIEVAL if flag else NO_RETRIEVAL)
                          for piece, flag in zip(pieces[:-1], flags))
        return rebuilt + pieces[-1] + NO_RETRIEVAL  # the last piece always gets one

    @staticmethod
    def _path(node: _Node) -> list[_Node]:
        path = []
        while node is not None:
            path.append(node)
            node = node.parent
        return path[::-1]

