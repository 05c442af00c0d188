"""Turning generated text into answers: control-token stripping and closed-set aggregation."""

from __future__ import annotations

from collections.abc import Sequence

from selfrag.tokens import CONTROL_TOKENS, FAITHFUL_CONTROL_TOKENS

#: End-of-text markers the original strips besides the control tokens (in its
#: ``postprocess_answer_option_conditioned``).
END_MARKERS = ("</s>", "<|endoftext|>")
CLOSED_SET_TASKS = ("fever", "arc_c")


def strip_control_tokens(text: str, faithful: bool = False, extra: Sequence[str] = ()) -> str:
    """Remove reflection tokens, end markers and newlines from a generated answer.

    The default also removes ``[Continue to Use Evidence]``, which the original forgets, and any
    ``extra`` strings (e.g. the tokenizer's own EOS, ``<|im_end|>`` for SmolLM2).
    """
    tokens = FAITHFUL_CONTROL_TOKENS if faithful else CONTROL_TOKENS
    for token in (*tokens, *END_MARKERS, *([] if faithful else extra)):
        text = text.replace(token, "")
    return text.replace("\n", "")


def tokenizer_eos(tokenizer) -> tuple[str, ...]:
    """The tokenizer's own EOS string, if any: the ``extra`` of :func:`strip_control_tokens`."""
    eos = getattr(tokenizer, "eos_token", None)
    return (eos,) if eos else ()


def clean_prediction(prediction: str, faithful: bool = False) -> str:
    """The original's final touches (in its ``main``): drop a leading ``#``/``:``, map FEVER labels.

    ``SUPPORTS`` becomes ``true`` and ``REFUTES`` becomes ``false``. By default surrounding
    whitespace is also trimmed.
    """
    if not faithful:
        prediction = prediction.strip()
    if prediction[:1] in ("#", ":"):
        prediction = prediction[1:]
    if "SUPPORTS" in prediction:
        prediction = "true"
    elif "REFUTES" in prediction:
        prediction = "false"
    return prediction


def answer_key(answer: str, task: str | None, faithful: bool = False) -> str:
    """The string under which closed-set candidates are pooled.

    Faithful: the stripped text verbatim. Default: whitespace collapsed, and lower-cased for fact
    checking (the paper lower-cases PubHealth predictions), so ``True`` and ``true`` pool together.
    """
    if faithful:
        return answer
    key = " ".join(answer.split())
    return key.lower() if task == "fever" else key


def aggregate_closed_set(answers: Sequence[str], scores: Sequence[float], task: str | None,
                         faithful: bool = False) -> tuple[str, dict[str, float]]:
    """Sum candidate scores per distinct answer and return the best (paper, Appendix B.2).

    Ties go to the answer seen first.
    """
    totals: dict[str, float] = {}
    for answer, score in zip(answers, scores):
        key = answer_key(answer, task, faithful)
        totals[key] = totals.get(key, 0.0) + score
    return max(totals, key=totals.get), totals
