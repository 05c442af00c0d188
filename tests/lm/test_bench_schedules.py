"""scripts/bench_schedules.py: alternating rounds, medians with their range, the prefill floor."""

from collections import Counter

import bench_schedules
from bench_schedules import Timing, alternate, describe, prefill_tokens_per_s, ratios


class CountingStub:
    def __init__(self):
        self.counts = Counter()


def test_schedules_alternate_and_keep_the_first_rounds_result(monkeypatch):
    calls, lm = [], CountingStub()

    def schedule(name):
        def run():
            calls.append(name)
            lm.counts.update(batches=len(calls))
            return f"{name}{len(calls)}"
        return run

    clock = iter(range(100))
    monkeypatch.setattr(bench_schedules.time, "perf_counter", lambda: next(clock) * 1.0)
    timings = alternate({"A": schedule("A"), "B": schedule("B")}, 3, lm)
    assert calls == ["A", "B", "A", "B", "A", "B"]
    assert timings["A"].result == "A1" and timings["B"].result == "B2"
    assert timings["A"].counts == {"batches": 1} and timings["B"].counts == {"batches": 2}
    assert timings["A"].seconds == [1.0, 1.0, 1.0]  # each run reads the clock twice
    assert len(timings["B"].minor_faults) == len(timings["B"].kernel_seconds) == 3


def test_median_with_range_and_round_by_round_ratios():
    assert describe([3.0, 1.0, 2.0]) == "2.0 [1.0–3.0]"
    assert describe([0.5, 0.25], ".2f") == "0.38 [0.25–0.50]"
    assert ratios(Timing(seconds=[4.0, 9.0]), Timing(seconds=[2.0, 3.0])) == [2.0, 3.0]


def test_prefill_floor_counts_real_tokens(tiny_model_path):
    from selfrag.lm.hf import HFLanguageModel

    lm = HFLanguageModel(tiny_model_path, device="cpu", batch_size=2)
    speed, batch_size = prefill_tokens_per_s(lm, ["a short prompt", "a longer prompt than that"],
                                             batch_sizes=(1, 2))
    assert speed > 0 and batch_size in (1, 2)
