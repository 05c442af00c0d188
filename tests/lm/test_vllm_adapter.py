"""The vLLM adapter on objects shaped like vLLM's outputs (vLLM itself is not installable here)."""

import math
from types import SimpleNamespace

import numpy as np
import pytest

from selfrag.lm.vllm import convert_completion


class Logprob(SimpleNamespace):
    """Shaped like vllm.sequence.Logprob (logprob, rank, decoded_token)."""


def test_new_style_logprob_objects():
    completion = SimpleNamespace(
        token_ids=[7, 3, 2], text=" yes[Utility:5]</s>", cumulative_logprob=-1.5,
        logprobs=[{7: Logprob(logprob=-0.5), 3: Logprob(logprob=-2.0), 9: Logprob(logprob=-3.0)},
                  {3: Logprob(logprob=-0.25), 9: Logprob(logprob=-4.0)},
                  {2: Logprob(logprob=-0.75)}],
    )
    generation = convert_completion(completion, control_ids=(3, 9), eos_token="</s>")
    assert generation.token_ids == [7, 3, 2] and generation.text == " yes[Utility:5]"
    assert generation.cumulative_logprob == -1.5
    np.testing.assert_array_equal(generation.control_logprobs,
                                  [[-2.0, -3.0], [-0.25, -4.0], [-math.inf, -math.inf]])


def test_old_style_float_dicts_and_missing_cumulative():
    completion = SimpleNamespace(token_ids=[4, 5], text="ab", cumulative_logprob=None,
                                 logprobs=[{4: -0.1, 5: -3.0}, {5: -0.2}])
    generation = convert_completion(completion, control_ids=(5,), eos_token=None)
    assert generation.cumulative_logprob == pytest.approx(-0.3)
    np.testing.assert_array_equal(generation.control_logprobs, [[-3.0], [-0.2]])
