"""What the inference benchmarks share: schedules timed alternately, medians with their spread,
the machine's forward-pass floor, page faults and kernel time.

A machine that is shared, throttled or a VM can run the same work twice as slowly from one minute
to the next; timing schedule A, then schedule B, once each, says little. :func:`alternate` runs
them A B A B ... (``repeats`` rounds), so that slow spells hit both, and :func:`describe` reports
the median with the range. :func:`prefill_tokens_per_s` measures how fast the model computes
tokens in plain forward passes over real prompts at its best batch size (logits at the last
position only), the floor against which an engine's time is judged; :func:`alternate` measures
it at the start of every round, and each run is judged against its own round's floor.
"""

from __future__ import annotations

import resource
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import torch

FLOOR_PROMPTS = 32  # prompts the prefill floor is measured on


@dataclass
class Timing:
    """Every round of one schedule: wall seconds, minor page faults, kernel CPU seconds, the
    round's prefill floor (tokens/s; none when not measured), and the first round's result and
    LM counts."""

    seconds: list[float] = field(default_factory=list)
    floors: list[float] = field(default_factory=list)
    minor_faults: list[int] = field(default_factory=list)
    kernel_seconds: list[float] = field(default_factory=list)
    result: object = None
    counts: dict = field(default_factory=dict)


def alternate(schedules: dict[str, Callable[[], object]], repeats: int, lm=None,
              floor_prompts: Sequence[str] = ()) -> dict[str, Timing]:
    """Run every schedule once per round, ``repeats`` rounds (A B A B ...); ``lm.counts`` (when
    given) is cleared before each run and kept from the first round. With ``floor_prompts``,
    each round starts by measuring the prefill floor over the first :data:`FLOOR_PROMPTS` of
    them (:func:`prefill_tokens_per_s`)."""
    timings = {name: Timing() for name in schedules}
    for round_ in range(repeats):
        if floor_prompts:
            floor, _ = prefill_tokens_per_s(lm, floor_prompts[:FLOOR_PROMPTS])
            for timing in timings.values():
                timing.floors.append(floor)
        for name, schedule in schedules.items():
            if lm is not None:
                lm.counts.clear()
            before = resource.getrusage(resource.RUSAGE_SELF)
            start = time.perf_counter()
            result = schedule()
            seconds = time.perf_counter() - start
            after = resource.getrusage(resource.RUSAGE_SELF)
            timing = timings[name]
            timing.seconds.append(seconds)
            timing.minor_faults.append(after.ru_minflt - before.ru_minflt)
            timing.kernel_seconds.append(after.ru_stime - before.ru_stime)
            if round_ == 0:
                timing.result = result
                timing.counts = dict(lm.counts) if lm is not None else {}
    return timings


def describe(values: Sequence[float], fmt: str = ".1f") -> str:
    """``median [min–max]``."""
    return (f"{statistics.median(values):{fmt}} [{min(values):{fmt}}–{max(values):{fmt}}]")


def ratios(numerator: Timing, denominator: Timing) -> list[float]:
    """Round by round: ``numerator`` seconds / ``denominator`` seconds."""
    return [a / b for a, b in zip(numerator.seconds, denominator.seconds)]


@torch.inference_mode()
def prefill_tokens_per_s(lm, prompts: Sequence[str], batch_sizes: Sequence[int] = (1, 4, 16, 32),
                         ) -> tuple[float, int]:
    """The machine's prefill floor: the best tokens per second of plain forward passes over
    ``prompts`` among ``batch_sizes`` (batches sorted by length as an engine cuts them,
    left-padded, logits at the last position only; the prompts' real tokens are counted).

    The best batch size, not the engine's: large batches can be slower per token on a CPU
    (tensors above glibc's mmap threshold are mapped and unmapped at every layer).

    Returns ``(tokens per second, batch size that reached it)``.
    """
    encoded = sorted((lm.tokenizer(p)["input_ids"] for p in prompts), key=len)
    pad, tokens, best = lm.tokenizer.pad_token_id, sum(len(r) for r in encoded), (0.0, 0)
    for batch_size in batch_sizes:
        start = time.perf_counter()
        for first in range(0, len(encoded), batch_size):
            rows = encoded[first:first + batch_size]
            width = max(len(r) for r in rows)
            input_ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
            attention = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
            lm.model(input_ids=input_ids.to(lm.device), attention_mask=attention.to(lm.device),
                     logits_to_keep=1, use_cache=False)
        best = max(best, (tokens / (time.perf_counter() - start), batch_size))
    return best


def print_timings(timings: dict[str, Timing], units: int, unit_name: str) -> None:
    """One line per schedule: seconds, units/s, minor faults and kernel seconds (medians)."""
    for name, timing in timings.items():
        per_s = [units / s for s in timing.seconds]
        print(f"{name:<20}: {describe(timing.seconds)} s  {describe(per_s, '.3f')} {unit_name}/s"
              f"  minor faults {statistics.median(timing.minor_faults):,.0f}, kernel "
              f"{statistics.median(timing.kernel_seconds):.1f} s")


def print_work(timings: dict[str, Timing]) -> None:
    """Two lines per schedule: its forward passes and tokens (first round), then each run's
    time as a multiple of what its round's floor would take for the tokens it computed (prompts
    less the reused shared prefixes, plus generated tokens) and for the naive count (every
    prompt token)."""
    for name, timing in timings.items():
        counts = timing.counts
        naive = counts["prompt_tokens"] + counts["generated_tokens"]
        computed = naive - counts["shared_prefix_tokens"]
        print(f"{name:<20}: {counts['forward_passes']:4d} prefill passes, "
              f"{counts['decode_groups']:4d} decoding groups, prompt tokens "
              f"{counts['prompt_tokens']:,} ({counts['shared_prefix_tokens']:,} reused, "
              f"{counts['padded_prompt_tokens']:,} computed with padding), generated "
              f"{counts['generated_tokens']:,}")
        runs = list(zip(timing.seconds, timing.floors))
        print(f"{'':<20}  time = {describe([s * f / computed for s, f in runs], '.2f')}"
              f" x the floor of its {computed:,} computed tokens, "
              f"{describe([s * f / naive for s, f in runs], '.2f')} x that of all "
              f"{naive:,}")


def without_prefix_reuse(lm, schedule: Callable[[], object]) -> Callable[[], object]:
    """``schedule`` run with ``lm.reuse_prefixes`` off, as the original's engine ran (an
    original-style schedule must not gain from our backend's prefix reuse)."""
    def run():
        lm.reuse_prefixes = False
        try:
            return schedule()
        finally:
            lm.reuse_prefixes = True
    return run


def print_speed_up(slow: Timing, fast: Timing) -> None:
    """The round-by-round ratio of the two schedules' times, median [range]."""
    print(f"{'speed-up':<20}: {describe(ratios(slow, fast), '.2f')}x")


def print_report(timings: dict[str, Timing], units: int, unit_name: str, slow: str, fast: str,
                 prompts_name: str) -> None:
    """Everything after a benchmark's header line: each schedule's timings, the prefill floors
    measured in the rounds (over the first :data:`FLOOR_PROMPTS` of the ``prompts_name``), each
    schedule's work against them, and the speed-up of ``fast`` over ``slow``."""
    print_timings(timings, units, unit_name)
    floors = timings[fast].floors
    print(f"{'prefill floor':<20}: {describe(floors, ',.0f')} tokens/s (forward passes over the "
          f"first {FLOOR_PROMPTS} {prompts_name}, best batch size, measured in each round)")
    print_work(timings)
    print_speed_up(timings[slow], timings[fast])
