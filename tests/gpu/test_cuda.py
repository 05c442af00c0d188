"""Device-only checks: the CUDA paths give the CPU's answers. Marked ``gpu``: skipped where no
CUDA device is present (this project's CI and development machines; not yet run on a GPU)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.gpu

PROMPTS = ["### Instruction:\nWho wrote Hamlet?\n\n### Response:\n",
           "### Instruction:\nWhat is 2 plus 2?\n\n### Response:\n"]


def _generate(model_path: str, device: str, dtype: str):
    from selfrag.lm.base import GenerationRequest
    from selfrag.lm.hf import HFLanguageModel
    from selfrag.tokens import reflection_token_ids

    lm = HFLanguageModel(model_path, device=device, dtype=dtype, batch_size=2)
    ids = reflection_token_ids(lm.tokenizer)
    request = GenerationRequest(6, control_ids=(ids.id("[Retrieval]"), ids.id("[No Retrieval]")))
    return lm.generate(PROMPTS, request)


def test_fp32_on_cuda_decodes_as_on_cpu(tiny_model_path):
    cpu, gpu = (_generate(tiny_model_path, device, "float32") for device in ("cpu", "cuda"))
    assert [g.text for g in gpu] == [c.text for c in cpu]
    for c, g in zip(cpu, gpu):
        np.testing.assert_allclose(g.control_logprobs[0], c.control_logprobs[0], atol=1e-3)


def test_half_on_cuda_keeps_the_reflection_probabilities(tiny_model_path):
    cpu, gpu = (_generate(tiny_model_path, device, dtype)
                for device, dtype in (("cpu", "float32"), ("cuda", "half")))
    for c, g in zip(cpu, gpu):
        np.testing.assert_allclose(g.control_logprobs[0], c.control_logprobs[0], atol=5e-2)
