"""Label kinds of the critic data and reading a label out of a judge's or critic's reply.

One parser serves both places the original parsed labels (with different, lossy rules): GPT-4
replies in the labelling scripts (``chatgpt_*.py``) and critic predictions in the generator-data
assembly (``postprocess_data.py``). It accepts the forms judges actually write — ``[Relevant]``,
``Rating: [Irrelevant]``, ``Relevant``, ``[Yes]``, ``5``, ``Score: 4``, ``4/5``, ``4 out of 5``,
``[Utility:4]``, ``No support/Contradictory`` — and
returns ``None`` for a reply with no label or with two different labels: such replies are
counted and kept aside by the callers, never mapped to a default label.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from selfrag.tokens import (
    CONTINUE_EVIDENCE,
    FULLY_SUPPORTED,
    IRRELEVANT,
    NO_RETRIEVAL,
    NO_SUPPORT,
    PARTIALLY_SUPPORTED,
    RELEVANT,
    RETRIEVAL,
    UTILITY,
)


@dataclass(frozen=True)
class LabelKind:
    """One type of critic label.

    Attributes:
        name: the kind's name (also the original's ``--task`` value where it had one).
        tokens: the reflection tokens a label of this kind can be.
        aliases: other spellings judges use, lower-cased, mapped to a token.
        scale: for 1–5 scores, the token of each score (index 0 is score 1).
    """

    name: str
    tokens: tuple[str, ...]
    aliases: tuple[tuple[str, str], ...] = ()
    scale: tuple[str, ...] = ()


_RETRIEVE_ALIASES = (("yes", RETRIEVAL), ("no", NO_RETRIEVAL), ("retrieval", RETRIEVAL),
                     ("no retrieval", NO_RETRIEVAL))

KINDS: dict[str, LabelKind] = {kind.name: kind for kind in (
    # Retrieve from the instruction alone; judges answer [Yes] / [No].
    LabelKind("retrieval", (RETRIEVAL, NO_RETRIEVAL), _RETRIEVE_ALIASES),
    # Retrieve for one output sentence given the evidence so far.
    LabelKind("multi_retrieval", (RETRIEVAL, NO_RETRIEVAL), _RETRIEVE_ALIASES),
    LabelKind("multi_retrieval_three_way", (RETRIEVAL, NO_RETRIEVAL, CONTINUE_EVIDENCE),
              _RETRIEVE_ALIASES + (("continue to use evidence", CONTINUE_EVIDENCE),)),
    LabelKind("relevance", (RELEVANT, IRRELEVANT),
              (("relevant", RELEVANT), ("irrelevant", IRRELEVANT))),
    LabelKind("groundness", (FULLY_SUPPORTED, PARTIALLY_SUPPORTED, NO_SUPPORT),
              (("fully supported", FULLY_SUPPORTED), ("partially supported", PARTIALLY_SUPPORTED),
               ("no support / contradictory", NO_SUPPORT), ("no support", NO_SUPPORT),
               ("contradictory", NO_SUPPORT))),
    # The 1-5 entailment-scale variant of IsSup: 5-4 fully, 3-2 partially, 1 no support.
    LabelKind("groundness_scale", (FULLY_SUPPORTED, PARTIALLY_SUPPORTED, NO_SUPPORT),
              scale=(NO_SUPPORT, PARTIALLY_SUPPORTED, PARTIALLY_SUPPORTED, FULLY_SUPPORTED,
                     FULLY_SUPPORTED)),
    LabelKind("utility", UTILITY, tuple((f"utility:{k}", UTILITY[k - 1]) for k in range(1, 6)),
              scale=UTILITY),
)}
#: The original's spelling of ``groundness`` in the critic runs (``--task groudness``).
KINDS["groudness"] = KINDS["groundness"]

_FIELD_PREFIX = re.compile(
    r"^\s*(?:rating|score|need retrieval\?|perceived utility|label|answer|decision|judgement|"
    r"judgment)\s*:\s*", re.IGNORECASE)
_BRACKETED = re.compile(r"\[([^\[\]]+)\]")
_SCORE = re.compile(r"(?<![\d.])([1-5])(?![\d.])")
#: The scale's maximum written after a score ("4/5", "4 out of 5"): not a second score.
_OUT_OF_FIVE = re.compile(r"(?<=\d)\s*(?:/|out of)\s*5\b", re.IGNORECASE)


@dataclass(frozen=True)
class ParsedLabel:
    """A reply read as a label.

    Attributes:
        label: the reflection token, or ``None`` when the reply holds no (single) label.
        decision: the part of the reply before ``Explanation:``, stripped.
        explanation: the part after it ('' if none).
        score: the 1–5 score for scale kinds, else ``None``.
        problem: why ``label`` is ``None`` ('' when it is not).
    """

    label: str | None
    decision: str
    explanation: str
    score: int | None = None
    problem: str = ""


def split_reply(reply: str) -> tuple[str, str]:
    """``(decision, explanation)``: the reply cut at its first ``Explanation:``."""
    match = re.search(r"\n?\s*Explanation\s*:", reply, re.IGNORECASE)
    if match is None:
        return reply.strip(), ""
    return reply[: match.start()].strip(), reply[match.end():].strip()


def parse_label(kind: str | LabelKind, reply: str) -> ParsedLabel:
    """Read the label of ``kind`` from ``reply`` (see the module docstring for the forms)."""
    kind = KINDS[kind] if isinstance(kind, str) else kind
    decision, explanation = split_reply(reply)
    text = _normalize(_FIELD_PREFIX.sub("", decision))
    found: set[str] = set()
    score = None
    for content in _BRACKETED.findall(text):
        token = _token_for(kind, content)
        if token is not None:
            found.add(token)
    if not found:
        for alias, token in sorted(kind.aliases, key=lambda a: -len(a[0])):
            if re.fullmatch(rf"[\s\W]*{re.escape(alias)}[\s\W]*", text, re.IGNORECASE):
                found.add(token)
                break
    if not found and kind.scale:
        scores = {int(s) for s in _SCORE.findall(_OUT_OF_FIVE.sub("", text))}
        if len(scores) == 1:
            score = scores.pop()
            found.add(kind.scale[score - 1])
        elif len(scores) > 1:
            return ParsedLabel(None, decision, explanation, problem="several scores")
    if len(found) > 1:
        return ParsedLabel(None, decision, explanation, problem="several labels")
    if not found:
        return ParsedLabel(None, decision, explanation, problem="no label")
    label = found.pop()
    if kind.scale and score is None:
        score = kind.scale.index(label) + 1 if kind.name == "utility" else None
    return ParsedLabel(label, decision, explanation, score=score)


def _normalize(text: str) -> str:
    """Whitespace collapsed, and one space on each side of ``/`` as in the IsSup token, so that
    ``No support/Contradictory`` reads as ``No support / Contradictory``."""
    return re.sub(r"\s*/\s*", " / ", " ".join(text.split()))


def _token_for(kind: LabelKind, content: str) -> str | None:
    """The kind's token written as ``[content]`` (case, spacing and digits-only tolerated)."""
    bracketed = f"[{_normalize(content).strip()}]"
    for token in kind.tokens:
        if bracketed.lower() == token.lower():
            return token
    lowered = _normalize(content.lower())
    for alias, token in kind.aliases:
        if lowered == alias:
            return token
    if kind.scale and lowered in {"1", "2", "3", "4", "5"}:
        return kind.scale[int(lowered) - 1]
    return None
