"""Prefix reuse and kept caches inside the real engines: the same outputs as without them."""

import math

import numpy as np
import torch
from bench_long_form import RetrieveEvery
from transformers import LogitsProcessor

from selfrag.inference.long_form_beam import SegmentBeamSearch
from selfrag.inference.long_form_types import LongFormConfig, LongFormQuery
from selfrag.inference.short_form import ShortFormConfig, ShortFormEngine, ShortFormQuery
from selfrag.lm import kept_caches
from selfrag.lm.hf import HFLanguageModel
from selfrag.prompts import format_prompt
from selfrag.tokens import PARAGRAPH_CLOSE, RETRIEVAL, reflection_token_ids

QUESTIONS = ["Who wrote the novel Dune, and when was it first published?",
             "What is the capital of the country that borders Spain to the west?"]
PASSAGES = [[{"title": "Dune", "text": "Dune is a 1965 novel by Frank Herbert."},
             {"title": "Herbert", "text": "Frank Herbert was an American science fiction author."}],
            [{"title": "Portugal", "text": "Portugal borders Spain; its capital is Lisbon."},
             {"title": "Lisbon", "text": "Lisbon lies on the Atlantic coast."}]]


class Ban(LogitsProcessor):
    """Never emit ``token`` (the random model repeats ``</paragraph>`` otherwise)."""

    def __init__(self, token: int):
        self.token = token

    def __call__(self, input_ids, scores):
        scores[:, self.token] = -torch.inf
        return scores


def pair(tiny_model_path):
    reused = HFLanguageModel(tiny_model_path, device="cpu", batch_size=4)
    alone = HFLanguageModel(tiny_model_path, device="cpu", batch_size=4)
    alone.reuse_prefixes = False
    return reused, alone


def test_short_form_with_the_decision_kept(tiny_model_path):
    reused, alone = pair(tiny_model_path)
    queries = [ShortFormQuery(format_prompt(q), p) for q, p in zip(QUESTIONS, PASSAGES)]
    config = ShortFormConfig(mode="adaptive_retrieval", threshold=0.0, max_new_tokens=6)
    a = ShortFormEngine(reused, config).run(queries)
    b = ShortFormEngine(alone, config).run(queries)
    assert [r.prediction for r in a] == [r.prediction for r in b]
    for x, y in zip(a, b):
        np.testing.assert_allclose([c.score for c in x.candidates], [c.score for c in y.candidates],
                                   rtol=1e-4)
    # the decision prompts were kept and started the passage prompts
    assert reused.counts["shared_prefix_tokens"] > 0 and alone.counts["shared_prefix_tokens"] == 0


def test_beam_search_levels_start_from_the_kept_parents(tiny_model_path, monkeypatch):
    reused, alone = pair(tiny_model_path)
    for lm in (reused, alone):  # the random model asks for a passage every 3 tokens
        ids = reflection_token_ids(lm.tokenizer)
        close = ids.id(PARAGRAPH_CLOSE)
        lm.logits_processors += [Ban(close), RetrieveEvery(ids.id(RETRIEVAL), close, 3)]
    starts = []
    real_longest = kept_caches.KeptCaches.longest

    def spy(self, tokens, limit):
        cache, shared = real_longest(self, tokens, limit)
        starts.append(shared)
        return cache, shared

    monkeypatch.setattr(kept_caches.KeptCaches, "longest", spy)
    config = LongFormConfig(mode="always_retrieve", max_new_tokens=8, beam_width=2, max_depth=3,
                            ndocs=2)
    queries = [LongFormQuery(format_prompt(q), p, q) for q, p in zip(QUESTIONS, PASSAGES)]
    a = SegmentBeamSearch(reused, config, reflection_token_ids(reused.tokenizer)).run(queries)
    b = SegmentBeamSearch(alone, config, reflection_token_ids(alone.tokenizer)).run(queries)
    assert max(len(r.segments) for r in a) >= 2  # deeper levels ran
    assert [[s.text for s in r.segments] for r in a] == [[s.text for s in r.segments] for r in b]
    assert all(math.isclose(x.score, y.score, rel_tol=1e-4) for x, y in zip(a, b))
    assert starts and max(starts) > 0  # a level's prompts started from the rows its parents kept
