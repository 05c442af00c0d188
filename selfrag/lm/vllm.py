"""vLLM backend (GPU). Optional: imported only when asked for.

UNVERIFIED on real vLLM: vLLM cannot be installed on the CPU machine this project is developed
on. The adapter is written against vLLM's documented API (``LLM``, ``SamplingParams``,
``RequestOutput.outputs[i].token_ids/.text/.cumulative_logprob/.logprobs``) and tested on objects
of the same shape (tests/lm/test_vllm_adapter.py).

Control-token probabilities must come from the full softmax (the original asked vLLM 0.2 for
``logprobs=32016``, which later versions refuse, issue #85), so when they are requested every
position asks for the whole vocabulary (``logprobs=-1`` with the engine built with
``max_logprobs=-1``). The reflection tokens are special tokens, so decoding keeps them
(``skip_special_tokens=False``), which the original's evaluation scripts forgot (#40).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from selfrag.lm.base import Generation, GenerationRequest
from selfrag.offline_models import resolve_model


def _logprob_value(entry) -> float:
    """vLLM >= 0.4 returns ``Logprob`` objects; 0.2.x returned plain floats."""
    return float(getattr(entry, "logprob", entry))


def convert_completion(completion, control_ids: Sequence[int], eos_token: str | None,
                       top_k: int = 0) -> Generation:
    """Turn one ``CompletionOutput`` into a :class:`Generation`."""
    token_ids = list(completion.token_ids)
    positions = completion.logprobs or []
    control = np.array(
        [[_logprob_value(step[c]) if c in step else -math.inf for c in control_ids]
         for step in positions], dtype=float,
    ).reshape(len(positions), len(control_ids))
    chosen = np.array([_logprob_value(step[t]) for step, t in zip(positions, token_ids)], dtype=float)
    cumulative = completion.cumulative_logprob
    if cumulative is None:
        cumulative = float(chosen.sum())
    text = completion.text
    if eos_token and text.endswith(eos_token):
        text = text[: -len(eos_token)]
    top = [sorted(((int(t), _logprob_value(v)) for t, v in step.items()), key=lambda tv: -tv[1])[:top_k]
           for step in positions] if top_k else []
    return Generation(token_ids=token_ids, text=text, cumulative_logprob=float(cumulative),
                      control_logprobs=control, token_logprobs=chosen, top_logprobs=top)


class VLLMLanguageModel:
    """vLLM's offline ``LLM`` behind the :class:`~selfrag.lm.base.LanguageModel` interface.

    Args mirror the original scripts: ``dtype`` (``half``), ``world_size`` (tensor parallel
    size) and ``download_dir`` (``.cache``).
    """

    def __init__(self, model_name_or_path: str, dtype: str = "half", world_size: int = 1,
                 download_dir: str | None = ".cache", tokenizer_path: str | None = None):
        try:
            from vllm import LLM
        except ImportError as err:
            raise ImportError("the vllm backend needs vllm (pip install -r requirements-gpu.txt)") from err
        path = resolve_model(model_name_or_path)
        self.llm = LLM(model=path, tokenizer=tokenizer_path or path, dtype=dtype,
                       tensor_parallel_size=world_size, download_dir=download_dir,
                       max_logprobs=-1)
        self.tokenizer = self.llm.get_tokenizer()
        self.name = model_name_or_path

    def sampling_params(self, request: GenerationRequest):
        from vllm import SamplingParams

        return SamplingParams(
            temperature=request.temperature, top_p=request.top_p if request.temperature > 0 else 1.0,
            max_tokens=request.max_new_tokens,
            logprobs=-1 if request.control_ids else request.top_logprobs,
            skip_special_tokens=False, stop_token_ids=list(request.stop_token_ids),
            seed=request.seed if request.temperature > 0 else None,
        )

    def generate(self, prompts: Sequence[str], request: GenerationRequest,
                 desc: str | None = None) -> list[Generation]:
        outputs = self.llm.generate(list(prompts), self.sampling_params(request),
                                    use_tqdm=desc is not None)
        eos = getattr(self.tokenizer, "eos_token", None)
        return [convert_completion(out.outputs[0], request.control_ids, eos, request.top_logprobs)
                for out in outputs]
