"""How to cut a list of prompts into generation batches.

Every prompt of a left-padded batch costs as much prefill as the batch's longest prompt, and every
batch pays its decoding steps once, however many rows it holds. Sorting prompts by length and
cutting the sorted list into fixed-size slices wastes prefill where lengths spread (the slice of
the longest prompts pads its short members to the longest) and makes needless batches where they
do not. :func:`plan_batches` instead finds, by dynamic programming over the sorted list, the cut
into contiguous batches of at most ``max_batch`` prompts that minimises

    padded prompt tokens + batch_cost x number of batches,

where ``batch_cost`` is what one more forward pass costs beyond its tokens, in prompt tokens (the
backend measures it, :mod:`selfrag.lm.cost_model`). ``max_tokens`` bounds a batch's padded size
(rows x longest prompt), e.g. to keep a CPU's activations below the size its allocator maps and
unmaps at every layer. The optimum is exact: with prompts sorted longest first, some optimal plan
always groups neighbours, and the recursion below tries every contiguous cut.
"""

from __future__ import annotations

from collections.abc import Sequence

def plan_batches(lengths: Sequence[int], max_batch: int, batch_cost: float = 0.0,
                 max_tokens: int | None = None) -> list[list[int]]:
    """Indices of ``lengths`` grouped into batches, longest prompts first.

    Args:
        lengths: token count of each prompt.
        max_batch: most prompts per batch (memory bound).
        batch_cost: cost of one more batch, in padded prompt tokens; 0 minimises padding alone.
        max_tokens: most padded tokens per batch (a longer prompt still gets a batch of its own).

    Returns:
        Batches of indices into ``lengths``; every index appears once.
    """
    if max_batch < 1:
        raise ValueError(f"max_batch must be at least 1, not {max_batch}")
    order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
    longest = [lengths[i] for i in order]  # longest[j]: the padded width of a batch starting at j
    n = len(order)
    best = [0.0] + [float("inf")] * n  # best[i]: cheapest plan for the first i sorted prompts
    start = [0] * (n + 1)
    for end in range(1, n + 1):
        for first in range(end - 1, max(0, end - max_batch) - 1, -1):
            too_big = max_tokens is not None and (end - first) * longest[first] > max_tokens
            if too_big and first < end - 1:
                break  # starting earlier only makes the batch wider and longer
            cost = best[first] + (end - first) * longest[first] + batch_cost
            if cost <= best[end]:  # ties: the earliest start, as a forward scan would keep
                best[end], start[end] = cost, first
    batches, end = [], n
    while end > 0:
        batches.append(order[start[end]:end])
        end = start[end]
    return batches[::-1]
