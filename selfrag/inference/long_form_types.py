"""What long-form inference is asked and what it answers: the settings, the query, the segments
and the result. Both searches (:mod:`selfrag.inference.long_form_beam`, ours, and
:mod:`selfrag.inference.long_form_faithful`, the original's) build these."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from selfrag.inference.decision import check_mode
from selfrag.inference.query import Query
from selfrag.inference.scoring import CritiqueWeights


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
        check_mode(self.mode)
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
