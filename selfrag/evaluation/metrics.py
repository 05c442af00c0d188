"""Answer metrics (after the original ``retrieval_lm/metrics.py``): match, accuracy, exact match
and token F1 (SQuAD normalisation).

Each metric scores one prediction against its gold answers and returns a float in [0, 1];
averages over a dataset are taken by the caller.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = set(string.punctuation)


def normalize_answer(text: str) -> str:
    """SQuAD normalisation: lower-case, drop punctuation, drop articles, collapse whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def match(prediction: str, golds: Sequence[str]) -> float:
    """1 if any gold string is a case-sensitive substring of the prediction (Mallen et al.)."""
    return float(any(gold in prediction for gold in golds))


def accuracy(prediction: str, golds: Sequence[str]) -> float:
    """1 if the normalised prediction equals the normalised first gold (closed-set labels)."""
    return float(bool(golds) and normalize_answer(prediction) == normalize_answer(golds[0]))


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """Max over golds of normalised exact match."""
    return max((float(normalize_answer(prediction) == normalize_answer(g)) for g in golds),
               default=0.0)


def token_f1(prediction: str, gold: str) -> float:
    """Token-level F1 between normalised strings."""
    pred_tokens, gold_tokens = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((Counter(pred_tokens) & Counter(gold_tokens)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred_tokens), common / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def f1(prediction: str, golds: Sequence[str]) -> float:
    """Max over golds of token F1."""
    return max((token_f1(prediction, g) for g in golds), default=0.0)


METRICS: dict[str, Callable[[str, Sequence[str]], float]] = {
    "match": match, "accuracy": accuracy, "em": exact_match, "f1": f1,
}


def get_metric(name: str) -> Callable[[str, Sequence[str]], float]:
    if name not in METRICS:
        raise ValueError(f"unknown metric {name!r}; choose from {sorted(METRICS)}")
    return METRICS[name]
