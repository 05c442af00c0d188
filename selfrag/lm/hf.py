"""Hugging Face transformers backend (the default; CPU or GPU).

Prompts are grouped into batches by :func:`~selfrag.lm.batch_planning.plan_batches` (sorted by
length, cut where padding would cost more than another batch's decoding), and each batch goes
through ``model.generate`` with left padding. A logits processor placed before any sampling warper
records, at every step, the log-softmax of the raw logits at the control ids and the
log-probability of the token chosen at the previous step: O(batch x vocab) memory instead of
keeping every step's logits.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

import torch
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, LogitsProcessor

from selfrag.lm.base import Generation, GenerationRequest, check_fits
from selfrag.lm.batch_planning import FORWARD_PASS_TOKENS, plan_batches
from selfrag.offline_models import resolve_model

logger = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16,
           "half": torch.float16, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_dtype(dtype: str | None, device: str) -> torch.dtype:
    """``half`` (the original's default) on GPU; always fp32 on CPU, where half is ~20x slower
    (a requested half/bfloat16 on CPU is reported in one log line)."""
    if device == "cpu" and dtype not in (None, "auto", "float32", "fp32"):
        logger.info("--dtype %s: running in float32 on CPU (half precision is ~20x slower on "
                    "CPUs); it applies on a GPU", dtype)
    if device == "cpu" or dtype in (None, "auto"):
        return torch.float32 if device == "cpu" else torch.float16
    if dtype not in _DTYPES:
        raise ValueError(f"unknown dtype {dtype!r}; choose from {sorted(_DTYPES)}")
    return _DTYPES[dtype]


class _StepRecorder(LogitsProcessor):
    """Records log-probabilities at every decoding step without changing the scores."""

    def __init__(self, control_ids: Sequence[int], top_k: int = 0):
        self.control_ids = list(control_ids)
        self.top_k = top_k
        self.control: list[torch.Tensor] = []  # per step: [batch, n_control]
        self.top: list[tuple[torch.Tensor, torch.Tensor]] = []  # per step: values, ids [batch, k]
        self.chosen: list[torch.Tensor] = []   # per step (lagging by one): [batch]
        self._last: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._last is not None:  # the token chosen at the previous step is now in input_ids
            self.chosen.append(self._last.gather(1, input_ids[:, -1:]).squeeze(1).cpu())
        logprobs = torch.log_softmax(scores.float(), dim=-1)
        self.control.append(logprobs[:, self.control_ids].cpu())
        if self.top_k:
            values, ids = logprobs.topk(self.top_k, dim=-1)
            self.top.append((values.cpu(), ids.cpu()))
        self._last = logprobs
        return scores

    def finish(self, last_tokens: torch.LongTensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-step chosen log-probs ``[batch, steps]`` and control log-probs ``[batch, steps, n]``."""
        self.chosen.append(self._last.gather(1, last_tokens[:, None]).squeeze(1).cpu())
        self._last = None
        return torch.stack(self.chosen, dim=1), torch.stack(self.control, dim=1)


class HFLanguageModel:
    """transformers ``generate`` behind the :class:`~selfrag.lm.base.LanguageModel` interface.

    Args:
        model_name_or_path: HF id, local folder, or an offline alias of
            :mod:`selfrag.offline_models`.
        device: ``cpu``/``cuda``/...; default: CUDA when available.
        dtype: ``half``/``bfloat16``/``float32``/``auto`` (ignored on CPU, which runs fp32).
        batch_size: most prompts per ``generate`` call.
        tokenizer_path: tokenizer folder when it differs from the model's.

    Attributes:
        logits_processors: extra ``LogitsProcessor`` objects applied before the log-probabilities
            are recorded (so recorded probabilities are those of the modified distribution);
            e.g. a benchmark that makes an untrained model ask for passages mid-answer.
        decode_step_tokens: what one decoding step of a batch costs, in prompt tokens of
            prefill; batches are cut to minimise padding + this x ``max_new_tokens`` per batch.
            Default: :data:`~selfrag.lm.batch_planning.FORWARD_PASS_TOKENS`; 0 minimises padding
            alone.
        counts: running totals since construction: ``prompts``, ``batches``, ``prompt_tokens``,
            ``padded_prompt_tokens`` (what prefill computed, padding included) and
            ``generated_tokens`` (up to each row's stop).
    """

    decode_step_tokens: float = FORWARD_PASS_TOKENS

    def __init__(self, model_name_or_path: str, device: str | None = None, dtype: str | None = None,
                 batch_size: int = 16, tokenizer_path: str | None = None):
        path = resolve_model(model_name_or_path)
        self.device = device or default_device()
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer_path or path, padding_side="left")
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.model = AutoModelForCausalLM.from_pretrained(
            path, dtype=resolve_dtype(dtype, self.device)).to(self.device).eval()
        self.name = model_name_or_path
        self.logits_processors: list[LogitsProcessor] = []
        self.counts = Counter()

    @classmethod
    def from_model(cls, model, tokenizer, batch_size: int = 16) -> HFLanguageModel:
        """Wrap an already loaded model and tokenizer."""
        lm = cls.__new__(cls)
        lm.model, lm.tokenizer, lm.batch_size = model.eval(), tokenizer, batch_size
        lm.device, lm.name = str(model.device), getattr(model, "name_or_path", "model")
        lm.logits_processors, lm.counts = [], Counter()
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        return lm

    @property
    def context_length(self) -> int | None:
        """The model's ``max_position_embeddings`` (``None`` when its config has none)."""
        return getattr(self.model.config, "max_position_embeddings", None)

    def generate(self, prompts: Sequence[str], request: GenerationRequest,
                 desc: str | None = None) -> list[Generation]:
        encoded = [self.tokenizer(p)["input_ids"] for p in prompts]
        for index, ids in enumerate(encoded):  # before any compute (see base.check_fits)
            check_fits(len(ids), request.max_new_tokens, self.context_length, index)
        results: list[Generation | None] = [None] * len(prompts)
        batches = plan_batches([len(ids) for ids in encoded], self.batch_size,
                               self.decode_step_tokens * request.max_new_tokens)
        for batch in tqdm(batches, desc=desc, unit="batch", disable=desc is None, leave=False):
            lengths = [len(encoded[i]) for i in batch]
            self.counts.update(prompts=len(batch), batches=1, prompt_tokens=sum(lengths),
                               padded_prompt_tokens=len(batch) * max(lengths))
            generations = self._generate_batch([encoded[i] for i in batch], request)
            self.counts.update(generated_tokens=sum(len(g.token_ids) for g in generations))
            for index, generation in zip(batch, generations):
                results[index] = generation
        return results

    def _generation_config(self, request: GenerationRequest) -> GenerationConfig:
        eos = [self.tokenizer.eos_token_id, *request.stop_token_ids]
        sample = request.temperature > 0
        return GenerationConfig(
            max_new_tokens=request.max_new_tokens, do_sample=sample,
            temperature=request.temperature if sample else None,
            top_p=request.top_p if sample else None, top_k=None,
            eos_token_id=eos, pad_token_id=self.tokenizer.pad_token_id,
        )

    @torch.inference_mode()
    def _generate_batch(self, encoded: list[list[int]], request: GenerationRequest) -> list[Generation]:
        width = max(len(ids) for ids in encoded)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in encoded])
        attention = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in encoded])
        recorder = _StepRecorder(request.control_ids, request.top_logprobs)
        if request.temperature > 0:
            torch.manual_seed(request.seed)
        sequences = self.model.generate(
            input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device),
            generation_config=self._generation_config(request),
            logits_processor=[*self.logits_processors, recorder],
        ).cpu()
        new_tokens = sequences[:, width:]
        chosen, control = recorder.finish(new_tokens[:, -1])
        stops = {self.tokenizer.eos_token_id, *request.stop_token_ids}
        generations = [self._unpack(row, chosen[b], control[b], stops)
                       for b, row in enumerate(new_tokens.tolist())]
        for b, generation in enumerate(generations):
            generation.top_logprobs = [
                list(zip(ids[b].tolist(), values[b].double().tolist()))
                for values, ids in recorder.top[: len(generation.token_ids)]]
        return generations

    def _unpack(self, row: list[int], chosen: torch.Tensor, control: torch.Tensor,
                stops: set[int]) -> Generation:
        length = next((t + 1 for t, token in enumerate(row) if token in stops), len(row))
        token_ids = row[:length]
        text_ids = token_ids[:-1] if token_ids and token_ids[-1] == self.tokenizer.eos_token_id else token_ids
        logprobs = chosen[:length].double().numpy()
        return Generation(
            token_ids=token_ids,
            text=self.tokenizer.decode(text_ids, skip_special_tokens=False),
            cumulative_logprob=float(logprobs.sum()),
            control_logprobs=control[:length].double().numpy(),
            token_logprobs=logprobs,
        )
