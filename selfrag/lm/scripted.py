"""A language model whose every step you dictate: for tests and worked examples.

Each prompt is answered by a script: a list of :class:`Step`, each giving the probabilities of a
few named tokens at that position and the token chosen there. Every formula that reads
token probabilities can then be checked against numbers computed by hand.

Example::

    lm = ScriptedLM(lambda prompt: [Step({"[Relevant]": 0.6, "[Irrelevant]": 0.3}),
                                    Step({"Paris": 0.9}), Step({"</s>": 1.0})])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from selfrag.lm.base import Generation, GenerationRequest
from selfrag.tokens import PAD, REFLECTION_TOKENS

EOS = "</s>"


@dataclass
class Step:
    """One generated position: probabilities of some tokens, and the token emitted there.

    Tokens not named have probability 0 here. ``chosen`` defaults to the most probable token.
    """

    probs: Mapping[str, float]
    chosen: str | None = None

    def token(self) -> str:
        return self.chosen if self.chosen is not None else max(self.probs, key=self.probs.get)


class ScriptedTokenizer:
    """Just enough of an HF tokenizer: a growing string<->id table with the reflection tokens."""

    unk_token_id = None

    def __init__(self):
        self._ids: dict[str, int] = {}
        for token in (EOS, PAD, *REFLECTION_TOKENS):
            self.add(token)
        self.eos_token, self.eos_token_id = EOS, self._ids[EOS]
        self.pad_token, self.pad_token_id = PAD, self._ids[PAD]
        self.name_or_path = "scripted"

    def add(self, token: str) -> int:
        return self._ids.setdefault(token, len(self._ids))

    def convert_tokens_to_ids(self, token: str) -> int | None:
        return self._ids.get(token)

    def convert_ids_to_tokens(self, token_id: int) -> str:
        return next(t for t, i in self._ids.items() if i == token_id)

    def __len__(self) -> int:
        return len(self._ids)

    def decode(self, token_ids, skip_special_tokens: bool = False) -> str:
        tokens = [self.convert_ids_to_tokens(i) for i in token_ids]
        return "".join(t for t in tokens if t != EOS or not skip_special_tokens)


class ScriptedLM:
    """Answers each prompt with ``script(prompt)``; records every call for inspection.

    Attributes:
        calls: one entry per ``generate`` call: the list of prompts it received.
        requests: the request of each call.
    """

    def __init__(self, script: Callable[[str], Sequence[Step]]):
        self.script = script
        self.tokenizer = ScriptedTokenizer()
        self.calls: list[list[str]] = []
        self.requests: list[GenerationRequest] = []

    @property
    def prompts_seen(self) -> list[str]:
        return [p for call in self.calls for p in call]

    def generate(self, prompts: Sequence[str], request: GenerationRequest,
                 desc: str | None = None) -> list[Generation]:
        self.calls.append(list(prompts))
        self.requests.append(request)
        return [self._answer(p, request) for p in prompts]

    def _answer(self, prompt: str, request: GenerationRequest) -> Generation:
        steps = list(self.script(prompt))[: request.max_new_tokens]
        stops = {self.tokenizer.eos_token_id, *request.stop_token_ids}
        token_ids, texts, logprobs, control, top = [], [], [], [], []
        for step in steps:
            token = step.token()
            token_id = self.tokenizer.add(token)
            token_ids.append(token_id)
            logprobs.append(_log(step.probs.get(token, 0.0)))
            control.append([_log(self._prob(step, c)) for c in request.control_ids])
            ranked = sorted(step.probs.items(), key=lambda item: -item[1])[: request.top_logprobs]
            top.append([(self.tokenizer.add(t), _log(p)) for t, p in ranked])
            if token_id in stops:
                if token_id != self.tokenizer.eos_token_id:
                    texts.append(token)
                break
            texts.append(token)
        return Generation(
            token_ids=token_ids, text="".join(texts), cumulative_logprob=float(sum(logprobs)),
            control_logprobs=np.array(control, dtype=float).reshape(len(token_ids),
                                                                    len(request.control_ids)),
            token_logprobs=np.array(logprobs, dtype=float),
            top_logprobs=top if request.top_logprobs else [],
        )

    def _prob(self, step: Step, token_id: int) -> float:
        return step.probs.get(self.tokenizer.convert_ids_to_tokens(token_id), 0.0)


def _log(p: float) -> float:
    return math.log(p) if p > 0 else -math.inf
