"""The measured forward-pass cost: a line fitted to timed passes, kept per model shape, device."""

import json

import pytest
import torch

from selfrag.lm import cost_model
from selfrag.lm.cost_model import ForwardCost, forward_cost


def timed_model(monkeypatch, seconds_of):
    """A fake model whose pass over ``n`` tokens advances a fake clock by ``seconds_of(n)``."""
    clock = {"now": 0.0}

    class Model:
        device = torch.device("cpu")
        config = type("Config", (), {"vocab_size": 100})()

        def __call__(self, input_ids, **_):
            clock["now"] += seconds_of(input_ids.shape[1])

    monkeypatch.setattr(cost_model.time, "perf_counter", lambda: clock["now"])
    return Model()


def test_the_fixed_cost_in_tokens_is_seconds_times_speed():
    assert ForwardCost(tokens_per_s=400.0, pass_seconds=0.05).pass_tokens == pytest.approx(20.0)


def test_two_timed_lengths_give_the_line(monkeypatch):
    # passes of 16 and 272 tokens taking 0.1 s and 0.9 s: 320 tokens/s and 0.05 s fixed
    model = timed_model(monkeypatch, {cost_model.SHORT: 0.1, cost_model.LONG: 0.9}.get)
    cost = cost_model.measure(model)
    assert cost.tokens_per_s == pytest.approx(320.0)
    assert cost.pass_seconds == pytest.approx(0.05)


def test_a_pass_that_does_not_grow_with_its_tokens_gets_a_finite_fixed_cost(monkeypatch):
    cost = cost_model.measure(timed_model(monkeypatch, lambda n: 0.5))
    # 1% of the 0.5 s long pass counted as the work of its 256 extra tokens
    assert cost.tokens_per_s == pytest.approx(256 / 0.005)
    assert cost.pass_seconds == pytest.approx(0.5 - 16 * 0.005 / 256)


def test_a_measurement_is_kept_and_reused(tiny_model_path, tmp_path, monkeypatch):
    from selfrag.lm.hf import HFLanguageModel

    monkeypatch.setenv("SELFRAG_CACHE", str(tmp_path))
    model = HFLanguageModel(tiny_model_path, device="cpu").model
    first = forward_cost(model)
    assert first.tokens_per_s > 0 and first.pass_seconds >= 0
    kept = json.loads((tmp_path / cost_model.COSTS_FILE).read_text())
    assert list(kept) == [cost_model.cost_key(model)]
    assert cost_model.cost_key(model).startswith("llama L2-H")  # the shape, not the folder
    monkeypatch.setattr(cost_model, "measure", lambda _: pytest.fail("measured again"))
    assert forward_cost(model) == first  # from this process's memory
    cost_model._READ.clear()
    assert forward_cost(model) == first  # from the file, as a new process reads it
