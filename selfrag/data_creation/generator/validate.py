"""A grammar check of generator training instances in the released format
(``selfrag/selfrag_train_data``, written by the original ``postprocess_data.py``).

An output is read as a sequence of reflection tokens, ``<paragraph>`` spans and text:

    output   := text? segment* utility
    segment  := retrieve text?                 (text after a segment: a short, unlabelled sentence)
    retrieve := "[Retrieval]" "<paragraph>" text "</paragraph>"
                    ( "[Relevant]" text issup | "[Irrelevant]" text )
              | "[No Retrieval]" text
              | "[Continue to Use Evidence]" text
    issup    := "[Fully supported]" | "[Partially supported]" | "[No support / Contradictory]"
    utility  := "[Utility:1]" ... "[Utility:5]"      (exactly one, last)

All 50 released examples bundled in ``eval_data/selfrag_train_sample50.jsonl`` follow it (a test
checks this). ``strict=True`` adds what our own pipeline guarantees and the released data does
not always: every labelled sentence is non-empty and ``[Continue to Use Evidence]`` comes only
after a passage.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from selfrag.tokens import (
    CONTINUE_EVIDENCE,
    IRRELEVANT,
    ISSUP_GROUP,
    NO_RETRIEVAL,
    PARAGRAPH_CLOSE,
    PARAGRAPH_OPEN,
    REFLECTION_TOKENS,
    RELEVANT,
    RETRIEVAL,
    UTILITY,
)

RECORD_FIELDS = ("instruction", "output", "input", "id", "dataset_name")
_SPLIT = re.compile("(" + "|".join(re.escape(t) for t in sorted(REFLECTION_TOKENS, key=len,
                                                                 reverse=True)) + ")")


def tokenize_output(output: str) -> list[str]:
    """The output cut into reflection tokens, markup and text pieces (empty pieces dropped)."""
    return [piece for piece in _SPLIT.split(output) if piece]


def validate_output(output: str, strict: bool = False) -> list[str]:
    """Problems with ``output`` against the grammar of the module docstring (empty: valid)."""
    pieces = tokenize_output(output)
    problems: list[str] = []
    if not pieces or pieces[-1] not in UTILITY:
        problems.append("does not end with a [Utility:k] token")
    if sum(p in UTILITY for p in pieces) > 1:
        problems.append("more than one [Utility:k] token")
    i, seen_passage = 0, False
    body = pieces[:-1] if pieces and pieces[-1] in UTILITY else pieces
    while i < len(body):
        piece = body[i]
        if piece not in REFLECTION_TOKENS:
            i += 1  # free text: a short sentence, or text before the first segment
            continue
        where = f"token {i} ({piece})"
        if piece == RETRIEVAL:
            if body[i + 1:i + 2] != [PARAGRAPH_OPEN]:
                problems.append(f"{where}: [Retrieval] not followed by <paragraph>")
                i += 1
                continue
            j = i + 2
            if j < len(body) and body[j] not in REFLECTION_TOKENS:
                j += 1
            if body[j:j + 1] != [PARAGRAPH_CLOSE]:
                problems.append(f"{where}: <paragraph> not closed by </paragraph>")
                i = j
                continue
            seen_passage = True
            j += 1
            isrel = body[j] if j < len(body) else None
            if isrel not in (RELEVANT, IRRELEVANT):
                problems.append(f"{where}: passage not followed by [Relevant] or [Irrelevant]")
                i = j
                continue
            j += 1
            j, has_text = _text(body, j)
            if strict and not has_text:
                problems.append(f"{where}: no sentence after {isrel}")
            if isrel == RELEVANT:
                if j >= len(body) or body[j] not in ISSUP_GROUP:
                    problems.append(f"{where}: [Relevant] sentence without an IsSup token")
                else:
                    j += 1
            i = j
        elif piece in (NO_RETRIEVAL, CONTINUE_EVIDENCE):
            if strict and piece == CONTINUE_EVIDENCE and not seen_passage:
                problems.append(f"{where}: [Continue to Use Evidence] before any passage")
            i, has_text = _text(body, i + 1)
            if strict and not has_text:
                problems.append(f"{where}: no sentence after {piece}")
        else:
            problems.append(f"{where}: {piece} out of place")
            i += 1
    return problems


def _text(body: list[str], j: int) -> tuple[int, bool]:
    """Skip one text piece at ``j`` if there is one."""
    if j < len(body) and body[j] not in REFLECTION_TOKENS:
        return j + 1, True
    return j, False


def validate_instance(record: Mapping, strict: bool = False) -> list[str]:
    """Problems with one training record: its fields, then its output's grammar (empty: valid)."""
    problems = [f"field {name!r} missing or not a string" for name in RECORD_FIELDS
                if not isinstance(record.get(name), str)]
    if isinstance(record.get("output"), str):
        problems += validate_output(record["output"], strict)
    return problems
