"""Long-form answers in the formats the evaluators read (spec §5.5).

- ASQA / ELI5: ALCE's result format, the answer carrying ``[k]`` citations where ``k`` is the
  1-based position of the cited passage in the item's ``docs``.
- FactScore: the answer text with reflection tokens removed.
"""

from __future__ import annotations

import re

from selfrag.inference.answers import strip_control_tokens
from selfrag.inference.long_form import LongFormEngine, LongFormResult
from selfrag.tokens import CONTINUE_EVIDENCE

_TRAILING_PUNCTUATION = re.compile(r"^(.*?)([.!?]*)$", re.DOTALL)


def fix_spacing(text: str) -> str:
    """A space after ``.``, ``!`` or ``?`` when a word character follows directly."""
    return re.sub(r"([.!?])(?=\w)", r"\1 ", text)


def factscore_output(engine: LongFormEngine, result: LongFormResult) -> str:
    if engine.config.faithful:  # " ".join over the path, root "" first: a leading space
        text = " ".join(["", *(s.text for s in engine.kept_segments(result))])
        text = strip_control_tokens(text, faithful=True)
        return fix_spacing(text.removeprefix(" "))
    return fix_spacing(engine.answer(result))


def asqa_output(engine: LongFormEngine, result: LongFormResult) -> tuple[str, list[dict]]:
    """The cited answer and the cited passages, aligned: ``[k]`` is ``docs[k - 1]``.

    Segments that are empty or repeat an earlier one are dropped with their passage; the citation
    goes before the segment's closing punctuation. ``faithful`` reproduces the original, whose
    numbers count dropped segments too and so can point past or beside their passage.
    """
    if engine.config.faithful:
        return _asqa_faithful(engine, result)
    parts, docs, seen = [], [], set()
    for segment in engine.kept_segments(result):
        text = engine.strip(segment.text).strip()
        if not text or text in seen:
            continue
        seen.add(text)
        if segment.passage is None:
            parts.append(text)
            continue
        docs.append(segment.passage)
        body, punctuation = _TRAILING_PUNCTUATION.match(text).groups()
        parts.append(f"{body.rstrip()} [{len(docs)}]{punctuation}")
    return fix_spacing(" ".join(parts)), docs


def _asqa_faithful(engine: LongFormEngine, result: LongFormResult) -> tuple[str, list[dict]]:
    segments = engine.kept_segments(result)
    if not result.retrieved:
        return fix_spacing(strip_control_tokens(segments[0].text, faithful=True).strip()), []
    output, docs, seen = "", [], []
    for idx, segment in enumerate(segments, start=1):  # the root (index 0) is empty: skipped
        text = strip_control_tokens(segment.text, faithful=True).strip()
        if not text or text in seen:
            continue
        seen.append(text)
        output += text[:-1] + f" [{idx}]. "
        docs.append(segment.passage)
    output = fix_spacing(output.rstrip(" "))
    output = output.replace("." + CONTINUE_EVIDENCE, " [1]. ").replace(". [1] ", " [1]. ")
    return output, docs
