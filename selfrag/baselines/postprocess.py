"""Turning baseline generations into answers, and the baseline metrics of the original
``run_baseline_lm.py``.

Differences from the original, reproduced by ``faithful``:

- ``REFUTES`` maps to ``false`` (the original left it as ``REFUTES``);
- closed-set post-processing applies to every item (the original kept it only for the last,
  partial batch and overwrote it with the raw output for every full batch).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from selfrag.evaluation.metrics import get_metric
from selfrag.inference.answers import END_MARKERS


def cut_output(text: str) -> str:
    """Keep the text before the first blank line and drop end markers, as the original did."""
    text = text.split("\n\n")[0]
    for marker in END_MARKERS:
        text = text.replace(marker, "")
    return text


def postprocess_closed(prediction: str, task: str | None, choices: Sequence[str] | None,
                       faithful: bool = False) -> str:
    """Map a free-form output onto the closed label set.

    With ``choices``, the output becomes the last candidate (in the order given) that occurs in
    it as a substring, if any. For ``fever``: ``SUPPORTS`` -> ``true``, ``REFUTES`` -> ``false``
    (faithful: ``REFUTES``), ``True``/``False`` lower-cased.
    """
    if choices:
        found = [c for c in choices if c in prediction]
        if found:
            prediction = found[-1]
    if task == "fever":
        if prediction == "SUPPORTS":
            prediction = "true"
        elif prediction == "REFUTES":
            prediction = "REFUTES" if faithful else "false"
        elif prediction in ("True", "False"):
            prediction = prediction.lower()
    return prediction


def uses_closed_postprocessing(task: str | None, choices: Sequence[str] | None) -> bool:
    return bool(choices) or task == "fever"


def applies_to_item(index: int, n_items: int, batch_size: int, faithful: bool) -> bool:
    """Whether closed-set post-processing reaches item ``index``: always by default; faithful,
    only for the items of the last, partial batch (a bug of the original ``run_baseline_lm.py``)."""
    if not faithful:
        return True
    return index >= (n_items // batch_size) * batch_size


def first_gold_substring(prediction: str, golds: Sequence[str]) -> float:
    """The baseline script's ``accuracy``: the first gold is a substring of the output."""
    return float(bool(golds) and golds[0] in prediction)


#: ``--metric`` of run_baseline_lm.py: ``accuracy`` is the original script's own definition.
BASELINE_METRICS = ("em", "accuracy", "match", "f1")


def baseline_metric(name: str) -> Callable[[str, Sequence[str]], float]:
    if name == "accuracy":
        return first_gold_substring
    return get_metric(name)
