"""Over-long prompts are refused before any generation, naming the file, line and field.

Policy (issue 12): a prompt that, with ``max_new_tokens``, does not fit in the model's context is
an error, never silently truncated (a truncated passage is another passage) and never generated
past the context (the answers would be meaningless). Static inputs are checked here, item by item,
before the first generation; prompts built later (online retrieval, the growing long-form
context) are checked by the backend itself (:func:`selfrag.lm.base.check_fits`).
"""

from __future__ import annotations

from collections.abc import Sequence

from selfrag.errors import InputError
from selfrag.lm.base import context_length, prompt_length
from selfrag.prompts import format_evidence
from selfrag.tokens import NO_RETRIEVAL


def check_prompts_fit(lm, path, examples: Sequence, max_new_tokens: int,
                      passages_field: str = "ctxs") -> None:
    """Every prompt built from ``examples`` (objects with ``line``, ``prompt``, ``passages``)
    fits ``lm``'s context with ``max_new_tokens`` more tokens.

    Raises:
        InputError: the first example whose question, or prompt with one of its passages, is too
            long for the model.
    """
    limit = context_length(lm)
    if limit is None:
        return
    for example in examples:
        tokens = prompt_length(lm, example.prompt + NO_RETRIEVAL)
        if tokens + max_new_tokens > limit:
            raise InputError(path, f"the prompt has {tokens} tokens; with --max_new_tokens "
                             f"{max_new_tokens} it exceeds the model's context of {limit} "
                             "positions", example.line, "question")
        for number, passage in enumerate(example.passages):
            tokens = prompt_length(lm, example.prompt + format_evidence(passage))
            if tokens + max_new_tokens > limit:
                raise InputError(path, f"passage {number} makes a prompt of {tokens} tokens; "
                                 f"with --max_new_tokens {max_new_tokens} it exceeds the model's "
                                 f"context of {limit} positions (shorten the passage, or lower "
                                 "--ndocs/--max_new_tokens)", example.line, passages_field)
