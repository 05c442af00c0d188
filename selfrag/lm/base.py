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
    """

    max_new_tokens: int
    control_ids: tuple[int, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    top_logprobs: int = 0


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
