"""The one interface every LM backend implements.

Self-RAG needs, for a batch of prompts: the continuation's token ids and text (special tokens
kept), its cumulative log-probability, and at every generated position the log-probabilities of
a small fixed set of token ids (the reflection tokens), taken from the softmax over the whole
vocabulary — never from a top-k list, which is what broke the original on newer vLLM (#85).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from selfrag.errors import SelfRagError


@dataclass(frozen=True)
class GenerationRequest:
    """How to continue a batch of prompts.

    Attributes:
        max_new_tokens: generation length limit.
        control_ids: token ids whose log-probabilities are reported at every generated position.
        stop_token_ids: ids that end a continuation besides the tokenizer's EOS; the stop token is
            kept in ``token_ids`` and ``text``.
        temperature: 0 for greedy decoding (all Self-RAG inference), > 0 to sample.
        top_p: nucleus sampling mass when sampling.
        seed: sampling seed.
        top_logprobs: how many most probable tokens to report at every generated position
            (0: none); used by the OpenAI-compatible server's ``logprobs``.
        keep_cache: a hint that later calls will send prompts beginning with these prompts and
            their continuations (a retrieval decision before the passage prompts, a tree-search
            node before its children); a backend may keep their key/value caches to start those
            prompts from. Outputs do not depend on it.
    """

    max_new_tokens: int
    control_ids: tuple[int, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    top_logprobs: int = 0
    keep_cache: bool = False


@dataclass
class Generation:
    """One continuation.

    Attributes:
        token_ids: generated ids, including a final EOS or stop token when one ended it.
        text: decoded continuation with special tokens kept, without a final EOS token.
        cumulative_logprob: sum of the log-probabilities of ``token_ids``.
        control_logprobs: array ``[len(token_ids), len(control_ids)]`` of log-probabilities of the
            requested control ids at each generated position (full softmax).
        token_logprobs: log-probability of each generated token (``cumulative_logprob`` is their
            sum); lets a continuation be cut into segments.
        top_logprobs: when requested, per position the ``(token_id, logprob)`` pairs of the most
            probable tokens, most probable first.
    """

    token_ids: list[int]
    text: str
    cumulative_logprob: float
    control_logprobs: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    token_logprobs: np.ndarray = field(default_factory=lambda: np.zeros(0))
    top_logprobs: list[list[tuple[int, float]]] = field(default_factory=list)

    def prefix(self, length: int, text: str) -> Generation:
        """The first ``length`` tokens as a generation of their own (``text`` is their decoding)."""
        logprobs = self.token_logprobs[:length]
        return Generation(self.token_ids[:length], text, float(np.sum(logprobs)),
                          self.control_logprobs[:length], logprobs, self.top_logprobs[:length])


class LanguageModel(Protocol):
    """What the inference code needs from a backend."""

    tokenizer: object

    def generate(self, prompts: Sequence[str], request: GenerationRequest,
                 desc: str | None = None) -> list[Generation]:
        """Continue every prompt; results come back in prompt order."""
        ...


class PromptTooLong(SelfRagError):
    """A prompt that, with the tokens to generate, does not fit in the model's context.

    Attributes:
        index: the prompt's position in the call; tokens, max_new_tokens, limit: the numbers.
    """

    def __init__(self, tokens: int, max_new_tokens: int, limit: int, index: int = 0):
        self.tokens, self.max_new_tokens, self.limit, self.index = (tokens, max_new_tokens, limit,
                                                                    index)
        super().__init__(f"a prompt of {tokens} tokens plus {max_new_tokens} new tokens exceeds "
                         f"the model's context of {limit} positions")


def context_length(lm) -> int | None:
    """Positions ``lm`` can attend to (``None``: not known, e.g. the scripted LM)."""
    return getattr(lm, "context_length", None)


def prompt_length(lm, text: str) -> int:
    """Tokens of ``text`` as ``lm`` encodes a prompt."""
    return len(lm.tokenizer(text)["input_ids"])


def check_fits(tokens: int, max_new_tokens: int, limit: int | None, index: int = 0) -> None:
    """Our policy for over-long prompts: refuse them (never truncate silently, never generate
    past the context, where a model's answers are meaningless).

    Raises:
        PromptTooLong: ``tokens + max_new_tokens > limit``.
    """
    if limit is not None and tokens + max_new_tokens > limit:
        raise PromptTooLong(tokens, max_new_tokens, limit, index)
