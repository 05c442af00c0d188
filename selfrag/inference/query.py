"""What inference is asked: a query, and what it may search with."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


class PassageSearch(Protocol):
    """What the engines need from a retriever (e.g. :class:`selfrag.retrieval.retriever.Retriever`)."""

    def search_batch(self, queries: list[str], n_docs: int) -> list[list[dict]]: ...


@dataclass
class Query:
    """One query: its generator prompt, its pre-retrieved passages (may be empty when a
    retriever is configured) and the text to search with (the question)."""

    prompt: str
    passages: Sequence[dict] = ()
    question: str = ""
