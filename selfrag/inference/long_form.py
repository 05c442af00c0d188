"""Long-form Self-RAG inference (ASQA, ELI5, FactScore): the engine that chooses the search and
turns its results into answer text.

The search is ours, the segment-level beam search of the paper (§3.3;
:mod:`selfrag.inference.long_form_beam`), or with ``faithful=True`` the original repository's
tree search, quirks included (:mod:`selfrag.inference.long_form_faithful`). Both take the same
settings and queries and give the same results (:mod:`selfrag.inference.long_form_types`).
"""

from __future__ import annotations

from collections.abc import Sequence

from selfrag.inference.answers import strip_control_tokens, tokenizer_eos
from selfrag.inference.long_form_beam import SegmentBeamSearch
from selfrag.inference.long_form_faithful import OriginalTreeSearch
from selfrag.inference.long_form_types import (  # noqa: F401  (the engine's API, re-exported)
    LongFormConfig,
    LongFormQuery,
    LongFormResult,
    Segment,
)
from selfrag.inference.query import PassageSearch
from selfrag.lm.base import LanguageModel
from selfrag.tokens import NO_SUPPORT, reflection_token_ids


class LongFormEngine:
    """Batched long-form inference.

    Args:
        lm: any backend.
        config: search settings; ``faithful`` chooses the original's tree search.
        retriever: optional; when given, passages are searched online instead of the queries'
            static passages (each search's docstring says when).
    """

    def __init__(self, lm: LanguageModel, config: LongFormConfig,
                 retriever: PassageSearch | None = None):
        self.lm, self.config, self.retriever = lm, config, retriever
        self.ids = reflection_token_ids(lm.tokenizer)
        search = OriginalTreeSearch if config.faithful else SegmentBeamSearch
        self.search = search(lm, config, self.ids, retriever)
        self._extra_strip = tokenizer_eos(lm.tokenizer)

    def run(self, queries: Sequence[LongFormQuery], progress: bool = False) -> list[LongFormResult]:
        return self.search.run(queries, progress)

    def strip(self, text: str) -> str:
        return strip_control_tokens(text, self.config.faithful, self._extra_strip)

    def kept_segments(self, result: LongFormResult) -> list[Segment]:
        """The best path's segments; with ``ignore_cont``, without those judged unsupported."""
        if not self.config.ignore_cont:
            return result.segments
        return [s for s in result.segments if NO_SUPPORT not in s.text]  # text keeps the tokens

    def answer(self, result: LongFormResult) -> str:
        """The answer text: segments without reflection tokens, joined by single spaces."""
        texts = (self.strip(s.text).strip() for s in self.kept_segments(result))
        return " ".join(t for t in texts if t)
