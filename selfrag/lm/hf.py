"""Hugging Face transformers backend (the default; CPU or GPU).

A call's prompts go through three stages (:mod:`selfrag.lm.kv_rows` holds the key/value rows):

1. **Shared prefixes** (:mod:`selfrag.lm.shared_prefixes`): prompts that begin alike (a query's
   K passage prompts, a long-form node's K children) have that beginning computed once.
2. **Prefill** of each prompt's own tokens but its last, in length buckets cut by
   :func:`~selfrag.lm.batch_planning.plan_batches` (padding against the measured cost of one more
   forward pass, :mod:`selfrag.lm.cost_model`; on a CPU, at most :data:`CPU_TENSOR_BYTES` of
   activations per pass, the size above which glibc maps and unmaps every tensor).
3. **Decoding** of many rows together: the rows' caches stacked into one preallocated static cache
   and continued by ``model.generate`` from each prompt's last token, so a decoding step's fixed
   cost is paid once for all of them. A logits processor placed before any sampling warper records,
   at every step, the log-softmax of the raw logits at the control ids and the log-probability of
   the token chosen at the previous step: O(batch x vocab) memory instead of every step's logits.

Each row computes exactly what it would alone (positions count its real tokens; padding is
masked): only floating-point summation order differs between schedules.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence

import torch
from tqdm.auto import tqdm
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, LogitsProcessor

from selfrag.lm import kv_rows
from selfrag.lm.base import Generation, GenerationRequest, check_fits
from selfrag.lm.batch_planning import plan_batches
from selfrag.lm.cost_model import forward_cost
from selfrag.lm.kept_caches import KeptCaches
from selfrag.lm.shared_prefixes import SharedPrefix, shared_prefixes
from selfrag.offline_models import resolve_model

logger = logging.getLogger(__name__)

#: On a CPU, the largest activation a forward pass may allocate: glibc serves bigger blocks with
#: mmap and returns them at every free, so a pass above it page-faults at every layer.
CPU_TENSOR_BYTES = 32 * 2**20
#: Most rows decoded together on a GPU (a CPU takes as many as keep its logits under
#: :data:`CPU_TENSOR_BYTES`).
GPU_DECODE_ROWS = 256
#: Share of free GPU memory the decoding rows' key/value cache may take.
GPU_CACHE_SHARE = 0.5
#: Key/value memory of the decoding rows on a CPU.
CPU_CACHE_BYTES = 2**30
#: Key/value memory kept between calls (``GenerationRequest.keep_cache``), CPU and GPU.
KEPT_CACHE_BYTES = {"cpu": 2**30, "cuda": 4 * 2**30}

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
        batch_size: most prompts per prefill forward pass.
        tokenizer_path: tokenizer folder when it differs from the model's.

    Attributes:
        logits_processors: extra ``LogitsProcessor`` objects applied before the log-probabilities
            are recorded (so recorded probabilities are those of the modified distribution);
            e.g. a benchmark that makes an untrained model ask for passages mid-answer.
        forward_pass_tokens: what one more prefill forward pass costs, in prompt tokens; prefill
            buckets are cut to minimise padding + this x passes. ``None`` (default): measured on
            the first call (:func:`~selfrag.lm.cost_model.forward_cost`); 0 minimises padding.
        reuse_prefixes: compute a beginning shared by several prompts once, and start prompts
            from the caches kept by the call before when it was made with ``keep_cache``
            (default True).
        kept: the rows the last call kept (:mod:`selfrag.lm.kept_caches`).
        counts: running totals since construction: ``prompts``, ``prompt_tokens`` (their tokens),
            ``shared_prefix_tokens`` (prompt tokens not computed: a shared prefix or a kept cache
            was reused),
            ``padded_prompt_tokens`` (what prefill computed, padding included),
            ``forward_passes`` (prefill passes), ``decode_groups`` (``generate`` calls) and
            ``generated_tokens`` (up to each row's stop).
    """

    forward_pass_tokens: float | None = None
    reuse_prefixes: bool = True

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
        self._start_state()

    @classmethod
    def from_model(cls, model, tokenizer, batch_size: int = 16) -> HFLanguageModel:
        """Wrap an already loaded model and tokenizer."""
        lm = cls.__new__(cls)
        lm.model, lm.tokenizer, lm.batch_size = model.eval(), tokenizer, batch_size
        lm.device, lm.name = str(model.device), getattr(model, "name_or_path", "model")
        lm._start_state()
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        return lm

    def _start_state(self) -> None:
        self.logits_processors: list[LogitsProcessor] = []
        self.counts = Counter()
        self.kept = KeptCaches(KEPT_CACHE_BYTES.get(torch.device(self.device).type, 0))
        self.arena = kv_rows.Arena() if torch.device(self.device).type == "cpu" else None

    @property
    def context_length(self) -> int | None:
        """The model's ``max_position_embeddings`` (``None`` when its config has none)."""
        return getattr(self.model.config, "max_position_embeddings", None)

    def generate(self, prompts: Sequence[str], request: GenerationRequest,
                 desc: str | None = None) -> list[Generation]:
        encoded = [self.tokenizer(p)["input_ids"] for p in prompts]
        for index, ids in enumerate(encoded):  # before any compute (see base.check_fits)
            check_fits(len(ids), request.max_new_tokens, self.context_length, index)
        shared = (shared_prefixes(encoded) if self.reuse_prefixes
                  else [SharedPrefix()] * len(encoded))
        self.counts.update(prompts=len(encoded), prompt_tokens=sum(map(len, encoded)))
        results: list[Generation | None] = [None] * len(prompts)
        kept = KeptCaches(self.kept.budget)  # for the next call only (see kept_caches)
        groups = self._decode_groups(encoded, shared, request.max_new_tokens)
        for rows in tqdm(groups, desc=desc, unit="group", disable=desc is None, leave=False):
            caches = self._prefill([encoded[i] for i in rows], [shared[i] for i in rows])
            generations = self._decode(caches, [encoded[i] for i in rows], request,
                                       kept if request.keep_cache and self.reuse_prefixes else None)
            self.counts.update(generated_tokens=sum(len(g.token_ids) for g in generations))
            for index, generation in zip(rows, generations):
                results[index] = generation
        self.kept = kept
        return results

    # -- which rows decode together ----------------------------------------------------------
    def _kv_bytes_per_token(self) -> int:
        heads, head_dim = kv_rows.kv_heads(self.model.config)
        layers = self.model.config.get_text_config(decoder=True).num_hidden_layers
        return 2 * layers * heads * head_dim * self.model.dtype.itemsize

    def _decode_limits(self) -> tuple[int, int]:
        """Most rows per decoding group, and the bytes their key/value cache may take."""
        if self.model.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.model.device)
            return GPU_DECODE_ROWS, int(free * GPU_CACHE_SHARE)
        logits_row = self.model.config.vocab_size * 4  # fp32 logits of one row
        return max(1, CPU_TENSOR_BYTES // logits_row), CPU_CACHE_BYTES

    def _decode_groups(self, encoded, shared, max_new_tokens: int) -> list[list[int]]:
        """Prompts cut into decoding groups, members of a shared prefix kept together, longest
        first, each group within the row and key/value memory limits."""
        members: dict[int, list[int]] = {}
        units = []
        for index, place in enumerate(shared):
            if place.group < 0:
                units.append([index])
            else:
                members.setdefault(place.group, []).append(index)
        units += members.values()
        units.sort(key=lambda unit: -max(len(encoded[i]) for i in unit))
        max_rows, budget = self._decode_limits()
        per_token = self._kv_bytes_per_token()
        groups, current, width = [], [], 0
        for unit in units:
            for index in unit:
                wider = max(width, len(encoded[index]) + max_new_tokens + 1)
                if current and (len(current) >= max_rows
                                or (len(current) + 1) * wider * per_token > budget):
                    groups.append(current)
                    current, wider = [], len(encoded[index]) + max_new_tokens + 1
                current.append(index)
                width = wider
        return groups + ([current] if current else [])

    # -- stages 1 and 2: shared prefixes, prefill -------------------------------------------
    def _pass_tokens(self) -> float:
        if self.forward_pass_tokens is None:
            self.forward_pass_tokens = forward_cost(self.model).pass_tokens
        return self.forward_pass_tokens

    def _max_forward_tokens(self) -> int | None:
        """On a CPU, the tokens whose widest activation (the MLP's) stays under
        :data:`CPU_TENSOR_BYTES`; no bound on a GPU."""
        if self.model.device.type == "cuda":
            return None
        config = self.model.config
        width = getattr(config, "intermediate_size", None) or 4 * config.hidden_size
        return max(1, CPU_TENSOR_BYTES // (width * self.model.dtype.itemsize))

    def _extend(self, caches, tokens) -> list:
        """Every row's cache continued by its tokens (none: unchanged), in planned buckets."""
        out = list(caches)
        todo = [r for r, t in enumerate(tokens) if t]
        plan = plan_batches([len(tokens[r]) for r in todo], self.batch_size, self._pass_tokens(),
                            self._max_forward_tokens())
        for bucket in plan:
            rows = [todo[b] for b in bucket]
            self.counts.update(forward_passes=1,
                               padded_prompt_tokens=len(rows) * max(len(tokens[r]) for r in rows))
            extended = kv_rows.extend(self.model, [caches[r] for r in rows],
                                      [tokens[r] for r in rows], self.tokenizer.pad_token_id,
                                      self.arena)
            for r, cache in zip(rows, extended):
                out[r] = cache
        return out

    def _kept_start(self, prompt: list[int], limit: int) -> tuple:
        """The kept cache sharing most of ``prompt``'s first ``limit`` tokens (cut to them) and
        its length."""
        if not self.reuse_prefixes or not len(self.kept):
            return None, 0
        return self.kept.longest(prompt, limit)

    def _prefill(self, encoded: list[list[int]], shared: list[SharedPrefix]) -> list:
        """Each row's cache of all its tokens but the last: a shared prefix computed once per
        group, every computation started from the kept cache that shares most of it."""
        groups = sorted({place.group for place in shared if place.group >= 0})
        members = [next(r for r, place in enumerate(shared) if place.group == g) for g in groups]
        heads = [encoded[r][:shared[r].length] for r in members]
        starts = [self._kept_start(encoded[r], shared[r].length) for r in members]
        computed = sum(len(head) - m for head, (_, m) in zip(heads, starts))
        head_of = dict(zip(groups, self._extend([c for c, _ in starts],
                                                [h[m:] for h, (_, m) in zip(heads, starts)])))
        caches, rests = [], []
        for ids, place in zip(encoded, shared):
            if place.group >= 0:
                caches.append(head_of[place.group])
                rests.append(ids[place.length:-1])
            else:
                cache, m = self._kept_start(ids, len(ids) - 1)
                caches.append(cache)
                rests.append(ids[m:-1])
        computed += sum(map(len, rests)) + len(encoded)  # + the last tokens, in decoding
        self.counts.update(shared_prefix_tokens=sum(map(len, encoded)) - computed)
        return self._extend(caches, rests)

    # -- stage 3: decoding ------------------------------------------------------------------
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
    def _decode(self, caches: list, encoded: list[list[int]], request: GenerationRequest,
                kept: KeptCaches | None = None) -> list[Generation]:
        """Continue every row from its last prompt token (the cache holds the others), all rows
        in one ``generate`` call; ``input_ids`` holds the whole prompts for logits processors."""
        cache, mask = kv_rows.static_cache(self.model, caches, request.max_new_tokens + 1,
                                           self.arena)
        width = mask.shape[1]
        input_ids = torch.full((len(caches), width + 1), self.tokenizer.pad_token_id)
        for r, ids in enumerate(encoded):
            input_ids[r, width + 1 - len(ids):] = torch.tensor(ids)
        attention = torch.cat([mask, torch.ones((len(caches), 1), dtype=torch.long)], dim=1)
        self.counts.update(decode_groups=1, padded_prompt_tokens=len(caches))
        recorder = _StepRecorder(request.control_ids, request.top_logprobs)
        if request.temperature > 0:
            torch.manual_seed(request.seed)
        sequences = self.model.generate(
            input_ids=input_ids.to(self.device), attention_mask=attention.to(self.device),
            cache=cache, generation_config=self._generation_config(request),
            logits_processor=[*self.logits_processors, recorder],
        ).cpu()
        new_tokens = sequences[:, width + 1:]
        chosen, control = recorder.finish(new_tokens[:, -1])
        stops = {self.tokenizer.eos_token_id, *request.stop_token_ids}
        generations = [self._unpack(row, chosen[b], control[b], stops)
                       for b, row in enumerate(new_tokens.tolist())]
        for b, generation in enumerate(generations):
            generation.top_logprobs = [
                list(zip(ids[b].tolist(), values[b].double().tolist()))
                for values, ids in recorder.top[: len(generation.token_ids)]]
        if kept is not None:
            self._keep(kept, cache, attention, encoded, generations, new_tokens.shape[1])
        return generations

    @staticmethod
    def _keep(kept: KeptCaches, cache, attention, encoded, generations, steps: int) -> None:
        """Each row's prompt and generated tokens into ``kept``: the cache holds every generated
        token but the call's last step (never fed back)."""
        width = attention.shape[1]
        for r, (ids, generation) in enumerate(zip(encoded, generations)):
            generated = min(len(generation.token_ids), steps - 1)
            columns = torch.cat([attention[r].nonzero().squeeze(1),
                                 torch.arange(width, width + generated)])
            kept.put(ids + generation.token_ids[:generated], kv_rows.take(cache, r, columns),
                     prompt_length=len(ids))

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
