"""ASQA metrics computed in-repo: string exact match (ALCE's str-em) and ROUGE-L.

Citation precision/recall and MAUVE need ALCE's evaluator and its models (a T5-XXL NLI model,
GPT-2 large): run ALCE's ``eval.py --f OUTPUT --citations --qa --mauve`` on our output file.
"""

from __future__ import annotations

import re

from selfrag.evaluation.metrics import normalize_answer

_TOKEN = re.compile(r"[a-z0-9]+")


def str_em(output: str, qa_pairs: list[dict]) -> float:
    """Fraction of disambiguated questions with a short answer contained in the output
    (both SQuAD-normalised), as ALCE's ``str_em``."""
    if not qa_pairs:
        return 0.0
    text = normalize_answer(output)
    hits = [any(normalize_answer(a) and normalize_answer(a) in text for a in pair["short_answers"])
            for pair in qa_pairs]
    return sum(hits) / len(hits)


def _lcs(a: list[str], b: list[str]) -> int:
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F1 over lower-cased alphanumeric tokens (the rouge-score tokenisation, no stemming)."""
    pred, ref = _TOKEN.findall(prediction.lower()), _TOKEN.findall(reference.lower())
    if not pred or not ref:
        return 0.0
    lcs = _lcs(pred, ref)
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(pred), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def asqa_rouge_l(output: str, annotations: list[dict]) -> float:
    """Best ROUGE-L against the annotators' long answers."""
    return max((rouge_l(output, a["long_answer"]) for a in annotations if a.get("long_answer")),
               default=0.0)
