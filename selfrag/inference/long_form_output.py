"""Long-form answers in the formats the evaluators read (as the original
``run_long_form_static.py`` wrote them).

- ASQA / ELI5: ALCE's result format, the answer carrying ``[k]`` citations where ``k`` is the
  1-based position of the cited passage in the item's ``docs``: the passages the model was given
  (as in ALCE's own runs), then any other passage it cited (found by online retrieval).
- FactScore: the answer text with reflection tokens removed.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

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


def asqa_output(engine: LongFormEngine, result: LongFormResult,
                given: Sequence[dict] = ()) -> tuple[str, list[dict]]:
    """The cited answer and the item's ``docs``, aligned: ``[k]`` is ``docs[k - 1]``.

    ``docs`` are the passages the model was ``given`` (the input's top ``ndocs``), followed by any
    other cited passage, so an answer that cites nothing still carries the docs it was given.
    Segments that are empty or repeat an earlier one are dropped; the citation goes before the
    segment's closing punctuation. ``faithful`` reproduces the original, whose ``docs`` are the
    cited passages only, and whose numbers count dropped segments too and so can point past or
    beside their passage.
    """
    if engine.config.faithful:
        return _asqa_faithful(engine, result)
    parts, docs, seen = [], list(given), set()
    for segment in engine.kept_segments(result):
        text = engine.strip(segment.text).strip()
        if not text or text in seen:
            continue
        seen.add(text)
        if segment.passage is None:
            parts.append(text)
            continue
        if segment.passage not in docs:
            docs.append(segment.passage)
        body, punctuation = _TRAILING_PUNCTUATION.match(text).groups()
        parts.append(f"{body.rstrip()} [{docs.index(segment.passage) + 1}]{punctuation}")
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
