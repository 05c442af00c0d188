"""Which retrieved passage a retrieving sentence is written with (cf. the original
``postprocess_data.py``).

Each candidate is one (sentence, passage) pair with its IsRel and IsSup labels. A candidate
whose IsRel is unreadable, or that is Relevant with an unreadable IsSup, takes no part (the
assembly counts it).

:func:`select_paper` — the paper's rule, our default: a Relevant + Fully supported passage, ties
broken by the highest retrieval score; failing that, Relevant + Partially supported (highest
score); failing that, one passage drawn at random (seeded) from the rest (Irrelevant or
Relevant + No support).

:func:`select_original` — the original script's rule, with probabilities 0.25 / 0.7 / 0.25 and
the ``nq`` / ``fever`` / ``wow`` special cases. With ``index_bug=True`` (``--faithful``) its
"random irrelevant passage" is the passage at a random *position* below the number of irrelevant
passages, which can be a relevant one; otherwise it is drawn from the irrelevant passages.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from selfrag.tokens import FULLY_SUPPORTED, IRRELEVANT, NO_SUPPORT, PARTIALLY_SUPPORTED, RELEVANT

P_NQ_IRRELEVANT_OVER_FULLY = 0.25  # nq: an irrelevant passage instead of a fully supported one
P_PARTIALLY = 0.7                  # take the first partially supported passage
P_NO_SUPPORT = 0.25                # take the first relevant, unsupported passage
ALWAYS_IRRELEVANT_DATASETS = ("nq", "fever")
NO_SUPPORT_IS_IRRELEVANT_DATASETS = ("nq", "fever", "wow")


@dataclass(frozen=True)
class Candidate:
    """A passage for one sentence with its labels (``issup`` only for Relevant passages)."""

    p_idx: int
    title: str
    text: str
    score: float
    isrel: str | None
    issup: str | None = None

    @property
    def usable(self) -> bool:
        return self.isrel == IRRELEVANT or (self.isrel == RELEVANT and self.issup is not None)


@dataclass(frozen=True)
class Choice:
    """The passage written into the output, with the IsRel (and IsSup) tokens that follow it."""

    passage: Candidate
    isrel: str
    issup: str | None


def _best(candidates: Sequence[Candidate]) -> Candidate:
    return max(candidates, key=lambda c: (c.score, -c.p_idx))


def select_paper(candidates: Sequence[Candidate], rng: random.Random) -> Choice | None:
    """The paper's rule (module docstring); ``None`` when no candidate is usable."""
    usable = [c for c in candidates if c.usable]
    for support in (FULLY_SUPPORTED, PARTIALLY_SUPPORTED):
        group = [c for c in usable if c.isrel == RELEVANT and c.issup == support]
        if group:
            return Choice(_best(group), RELEVANT, support)
    if not usable:
        return None
    pick = rng.choice(sorted(usable, key=lambda c: c.p_idx))
    return Choice(pick, pick.isrel, pick.issup if pick.isrel == RELEVANT else None)


def select_original(candidates: Sequence[Candidate], dataset: str, rng: random.Random,
                    index_bug: bool = True) -> Choice | None:
    """The original script's rule (module docstring); ``None``: the sentence is dropped."""
    ordered = sorted((c for c in candidates if c.usable), key=lambda c: c.p_idx)
    fully, partially, no_support, irrelevant = [], [], [], []
    for c in ordered:
        if c.isrel == IRRELEVANT:
            irrelevant.append(c)
        elif c.issup == FULLY_SUPPORTED:
            fully.append(c)
        elif c.issup == PARTIALLY_SUPPORTED:
            partially.append(c)
        elif dataset in NO_SUPPORT_IS_IRRELEVANT_DATASETS:
            irrelevant.append(c)
        else:
            no_support.append(c)

    def random_irrelevant() -> Choice:
        if index_bug:  # an index below len(irrelevant), used as a passage position
            position = rng.randrange(len(irrelevant))
            by_position = {c.p_idx: c for c in candidates}
            return Choice(by_position.get(position, ordered[min(position, len(ordered) - 1)]),
                          IRRELEVANT, None)
        return Choice(rng.choice(irrelevant), IRRELEVANT, None)

    choice: Choice | None = None
    if fully:
        if dataset == "nq" and irrelevant and rng.random() < P_NQ_IRRELEVANT_OVER_FULLY:
            choice = random_irrelevant()
        else:
            choice = Choice(fully[0], RELEVANT, FULLY_SUPPORTED)
    elif partially and rng.random() < P_PARTIALLY:
        choice = Choice(partially[0], RELEVANT, PARTIALLY_SUPPORTED)
    elif no_support and rng.random() < P_NO_SUPPORT:
        choice = Choice(no_support[0], RELEVANT, NO_SUPPORT)
    elif irrelevant:
        choice = random_irrelevant()
    if dataset in ALWAYS_IRRELEVANT_DATASETS and irrelevant:
        choice = random_irrelevant()
    return choice
