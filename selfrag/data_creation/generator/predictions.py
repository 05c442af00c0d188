"""Critic predictions read as reflection tokens, by our rule or the original's
(``postprocess_data.py``).

Ours: :func:`selfrag.data_creation.critic.labels.parse_label` — a prediction with no label, or
with two different labels, is ``None``; callers count it and never turn it into a label.

The original's (``faithful=True``), which do turn unreadable predictions into labels:

- retrieval: an exact token (a missing leading ``[`` added); ``Yes``/``[Yes]`` -> ``[Retrieval]``,
  ``No``/``[No]`` -> ``[No Retrieval]``; anything else -> ``[No Retrieval]``.
- utility: the first of the digits 1..5 (tried in ascending order) found anywhere -> that
  ``[Utility:k]``, else an exact ``[Utility:k]`` (missing ``[`` added), else ``None``.
- groundness: an exact IsSup token, ``4``/``5`` -> ``[Fully supported]``, else ``None``.
- relevance: contains ``Relevant`` (case-sensitive, so ``Irrelevant`` does not count) ->
  ``[Relevant]``, contains ``Irrelevant`` -> ``[Irrelevant]``, else ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping

from selfrag.data_creation.critic.labels import parse_label
from selfrag.tokens import (
    FULLY_SUPPORTED,
    IRRELEVANT,
    ISSUP_GROUP,
    NO_RETRIEVAL,
    RELEVANT,
    RETRIEVAL,
    RETRIEVE_GROUP,
    UTILITY,
)

#: The label kind of each prediction file of the assembly.
KIND_OF = {"retrieval": "retrieval", "multi_retrieval": "multi_retrieval_three_way",
           "utility": "utility", "relevance": "relevance", "groundness": "groundness"}


def _bracketed(pred: str) -> str:
    pred = pred.strip()
    return pred if pred.startswith("[") else "[" + pred


def original_label(kind: str, pred: str) -> str | None:
    """The original's normalisation of one prediction (module docstring)."""
    pred = pred.strip()
    if kind in ("retrieval", "multi_retrieval"):
        if _bracketed(pred) in RETRIEVE_GROUP:
            return _bracketed(pred)
        if pred in ("Yes", "[Yes]"):
            return RETRIEVAL
        return NO_RETRIEVAL
    if kind == "utility":
        for digit in "12345":
            if digit in pred:
                return UTILITY[int(digit) - 1]
        return _bracketed(pred) if _bracketed(pred) in UTILITY else None
    if kind == "groundness":
        if pred in ISSUP_GROUP:
            return pred
        return FULLY_SUPPORTED if pred in ("4", "5") else None
    if kind == "relevance":
        if "Relevant" in pred:
            return RELEVANT
        return IRRELEVANT if "Irrelevant" in pred else None
    raise ValueError(f"unknown prediction kind {kind!r}")


def read_label(kind: str, record: Mapping, faithful: bool = False) -> str | None:
    """The label of a prediction record: the original's rule, the record's own ``label`` when a
    judge wrote one, else :func:`parse_label` on ``pred``."""
    pred = str(record.get("pred") or "")
    if faithful:
        return original_label(kind, pred)
    if "label" in record:
        return record["label"]
    return parse_label(KIND_OF[kind], pred).label
