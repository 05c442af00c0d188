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
    def floor(lm, prompts):
        calls.append(f"floor{len(prompts)}")
        return 100.0 + len(calls), 4

    monkeypatch.setattr(bench_schedules, "prefill_tokens_per_s", floor)
    prompts = [f"p{i}" for i in range(40)]
    timings = alternate({"A": schedule("A"), "B": schedule("B")}, 3, lm, floor_prompts=prompts)
    assert calls == ["floor32", "A", "B"] * 3  # each round measures its floor first
    assert timings["A"].floors == timings["B"].floors == [101.0, 104.0, 107.0]
    assert timings["A"].result == "A2" and timings["B"].result == "B3"
    assert timings["A"].counts == {"batches": 2} and timings["B"].counts == {"batches": 3}
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


def test_work_lines_count_reused_prefixes_against_the_floor(capsys):
    counts = {"forward_passes": 4, "decode_groups": 2, "prompt_tokens": 900,
              "shared_prefix_tokens": 300, "padded_prompt_tokens": 700, "generated_tokens": 100}
    bench_schedules.print_work({"engine": Timing(seconds=[2.0, 3.0], floors=[350.0, 175.0],
                                                 counts=counts)})
    out = capsys.readouterr().out
    assert "4 prefill passes,    2 decoding groups, prompt tokens 900 (300 reused" in out
    # 700 computed tokens take 2 s at round 1's floor (350 tokens/s), 4 s at round 2's (175):
    # the runs took 1x and 0.75x that
    assert "time = 0.88 [0.75–1.00] x the floor of its 700 computed tokens" in out
    assert "0.61 [0.53–0.70] x that of all 1,000" in out


def test_a_schedule_without_prefix_reuse_restores_it():
    lm = CountingStub()
    lm.reuse_prefixes = True
    seen = []
    bench_schedules.without_prefix_reuse(lm, lambda: seen.append(lm.reuse_prefixes))()
    assert seen == [False] and lm.reuse_prefixes is True


def test_the_report_prints_the_rounds_floors_and_every_line(capsys):
    counts = {"forward_passes": 1, "decode_groups": 1, "prompt_tokens": 600,
              "shared_prefix_tokens": 0, "padded_prompt_tokens": 600, "generated_tokens": 100}
    timings = {"slow": Timing(seconds=[4.0, 4.0], floors=[350.0, 300.0], counts=counts),
               "fast": Timing(seconds=[2.0, 2.0], floors=[350.0, 300.0], counts=counts)}
    for t in timings.values():
        t.minor_faults, t.kernel_seconds = [0, 0], [0.0, 0.0]
    bench_schedules.print_report(timings, 10, "queries", slow="slow", fast="fast",
                                 prompts_name="evidence prompts")
    out = capsys.readouterr().out
    assert "prefill floor       : 325 [300–350] tokens/s (forward passes over the first 32 " \
           "evidence prompts, best batch size, measured in each round)" in out
    assert "fast                : 2.0 [2.0–2.0] s" in out
    assert "time = 0.93 [0.86–1.00] x the floor of its 700 computed tokens" in out
    assert "speed-up            : 2.00 [2.00–2.00]x" in out
