"""What RAG needs from a transformers model beyond ``generate``: teacher-forced sequence
log-probabilities (RAG-Sequence) and lock-step next-token distributions with a KV cache
(RAG-Token). Kept apart from :mod:`selfrag.lm` on purpose: only the RAG baselines use them.

Prompts are encoded exactly as :class:`selfrag.lm.hf.HFLanguageModel` encodes them
(``tokenizer(prompt)["input_ids"]``), so scores agree with what ``generate`` produced.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from selfrag.lm.batch_planning import plan_batches
from selfrag.lm.cost_model import forward_cost


class HFSequenceScorer:
    """``log p(continuation | prompt)`` by teacher forcing, in right-padded batches cut by
    :func:`~selfrag.lm.batch_planning.plan_batches` (one forward pass per batch, at the measured
    cost of :func:`~selfrag.lm.cost_model.forward_cost`).

    Args:
        model: a causal LM (eval mode).
        tokenizer: its tokenizer.
        batch_size: most rows per forward pass.
    """

    def __init__(self, model, tokenizer, batch_size: int = 8):
        self.model, self.tokenizer, self.batch_size = model.eval(), tokenizer, batch_size
        self.device = model.device

    @classmethod
    def from_lm(cls, lm) -> HFSequenceScorer:
        """Share the model of an :class:`~selfrag.lm.hf.HFLanguageModel`."""
        return cls(lm.model, lm.tokenizer, lm.batch_size)

    @torch.inference_mode()
    def sequence_logprobs(self, prompts: Sequence[str],
                          continuations: Sequence[Sequence[int]]) -> list[float]:
        rows = [(self.tokenizer(p)["input_ids"], list(c)) for p, c in zip(prompts, continuations)]
        results = [0.0] * len(rows)
        for batch in plan_batches([len(p) + len(c) for p, c in rows], self.batch_size,
                                  forward_cost(self.model).pass_tokens):
            for index, value in zip(batch, self._score_batch([rows[i] for i in batch])):
                results[index] = value
        return results

    def _score_batch(self, rows: list[tuple[list[int], list[int]]]) -> list[float]:
        width = max(len(p) + len(c) for p, c in rows)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.tensor([p + c + [pad] * (width - len(p) - len(c)) for p, c in rows])
        mask = torch.tensor([[1] * (len(p) + len(c)) + [0] * (width - len(p) - len(c))
                             for p, c in rows])
        logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
        logprobs = torch.log_softmax(logits.float(), dim=-1).cpu()
        scores = []
        for b, (prompt, continuation) in enumerate(rows):
            if not continuation:
                scores.append(0.0)
                continue
            positions = torch.arange(len(prompt) - 1, len(prompt) + len(continuation) - 1)
            targets = torch.tensor(continuation)
            scores.append(float(logprobs[b, positions, targets].double().sum()))
        return scores


class HFTokenSession:
    """Prompts (left-padded) advanced together one token per row at a time with a KV cache."""

    def __init__(self, model, tokenizer, prompts: Sequence[str]):
        self.model, self.device = model, model.device
        encoded = [tokenizer(p)["input_ids"] for p in prompts]
        width = max(len(ids) for ids in encoded)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        ids = torch.tensor([[pad] * (width - len(e)) + e for e in encoded], device=self.device)
        self.mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in encoded],
                                 device=self.device)
        # Positions count real tokens only, as generate() does with left padding.
        positions = (self.mask.cumsum(-1) - 1).clamp(min=0)
        self.next_position = positions[:, -1:] + 1
        self._forward(ids, positions, past=None)

    @torch.inference_mode()
    def _forward(self, ids: torch.Tensor, positions: torch.Tensor, past) -> None:
        out = self.model(input_ids=ids, attention_mask=self.mask, position_ids=positions,
                         past_key_values=past, use_cache=True)
        self.past = out.past_key_values
        self._logprobs = torch.log_softmax(out.logits[:, -1].float(), dim=-1)

    def logprobs(self) -> np.ndarray:
        return self._logprobs.double().cpu().numpy()

    def append(self, token_ids: Sequence[int]) -> None:
        """Append ``token_ids[r]`` to row r and compute the next distributions."""
        ids = torch.tensor(list(token_ids), dtype=torch.long, device=self.device)[:, None]
        self.mask = torch.cat([self.mask, torch.ones_like(self.mask[:, :1])], dim=1)
        positions = self.next_position
        self.next_position = positions + 1
        self._forward(ids, positions, self.past)


class HFNextTokenModel:
    """:class:`~selfrag.baselines.rag.NextTokenModel` for a transformers causal LM."""

    def __init__(self, model, tokenizer, stop_token_ids: Sequence[int] = ()):
        self.model, self.tokenizer = model.eval(), tokenizer
        self.stop_token_ids = {tokenizer.eos_token_id, *stop_token_ids}

    @classmethod
    def from_lm(cls, lm) -> HFNextTokenModel:
        return cls(lm.model, lm.tokenizer)

    def start(self, prompts: Sequence[str]) -> HFTokenSession:
        return HFTokenSession(self.model, self.tokenizer, prompts)

    def decode(self, token_ids: Sequence[int]) -> str:
        return self.tokenizer.decode(list(token_ids), skip_special_tokens=False)
