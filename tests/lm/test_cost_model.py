"""The measured forward-pass cost: a line fitted to timed passes, kept per model and device."""

import json

import pytest

from selfrag.lm import cost_model
from selfrag.lm.cost_model import ForwardCost, forward_cost


def test_the_fixed_cost_in_tokens_is_seconds_times_speed():
    assert ForwardCost(tokens_per_s=400.0, pass_seconds=0.05).pass_tokens == pytest.approx(20.0)


def test_two_timed_lengths_give_the_line(monkeypatch):
    # passes of 16 and 272 tokens taking 0.1 s and 0.9 s: 320 tokens/s and 0.05 s fixed
    times = {cost_model.SHORT: 0.1, cost_model.LONG: 0.9}

    class Clocked:
        device = __import__("torch").device("cpu")
        config = type("C", (), {"vocab_size": 100})()

        def __call__(self, input_ids, **_):
            clock.now += times[input_ids.shape[1]]

    class Clock:
        now = 0.0

        def __call__(self):
            return self.now

    clock = Clock()
    monkeypatch.setattr(cost_model.time, "perf_counter", clock)
    cost = cost_model.measure(Clocked())
    assert cost.tokens_per_s == pytest.approx(320.0)
    assert cost.pass_seconds == pytest.approx(0.05)


def test_a_measurement_is_kept_and_reused(tiny_model_path, tmp_path, monkeypatch):
    from selfrag.lm.hf import HFLanguageModel

    monkeypatch.setenv("SELFRAG_CACHE", str(tmp_path))
    model = HFLanguageModel(tiny_model_path, device="cpu").model
    first = forward_cost(model)
    assert first.tokens_per_s > 0 and first.pass_seconds >= 0
    kept = json.loads((tmp_path / cost_model.COSTS_FILE).read_text())
    assert list(kept) == [cost_model.cost_key(model)]
    monkeypatch.setattr(cost_model, "measure", lambda _: pytest.fail("measured again"))
    assert forward_cost(model) == first
