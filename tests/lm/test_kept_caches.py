"""KeptCaches: the kept cache sharing most of a prompt, cut to it; least recently used dropped."""

import torch

from selfrag.lm.kept_caches import KeptCaches
from selfrag.lm.kv_rows import cache_bytes


def row(tokens, layers=2):
    """A fake cache whose key at column i is the token i (so a cut is visible)."""
    column = torch.tensor(tokens, dtype=torch.float32)[None, :, None]  # [heads 1, tokens, dim 1]
    return [(column.clone(), -column.clone()) for _ in range(layers)]


def test_the_longest_shared_beginning_wins_and_is_cut_to_it():
    kept = KeptCaches(budget=10**6)
    kept.put([1, 2, 3, 4], row([1, 2, 3, 4]))
    kept.put([1, 2, 9], row([1, 2, 9]))
    kept.put([5, 6], row([5, 6]))
    cache, shared = kept.longest([1, 2, 3, 7, 7], limit=5)
    assert shared == 3 and cache[0][0].flatten().tolist() == [1, 2, 3]
    cache, shared = kept.longest([1, 2, 9, 9], limit=2)  # only the first 2 tokens may come from it
    assert shared == 2 and cache[1][1].flatten().tolist() == [-1, -2]
    assert kept.longest([7, 1], limit=2) == (None, 0)


def test_the_least_recently_used_cache_goes_first():
    size = cache_bytes(row([1, 2]))
    kept = KeptCaches(budget=2 * size)
    kept.put([1, 2], row([1, 2]))
    kept.put([3, 4], row([3, 4]))
    kept.longest([1, 2, 5], limit=3)  # [1, 2] used: [3, 4] is now the oldest
    kept.put([5, 6], row([5, 6]))
    assert len(kept) == 2 and kept.used == 2 * size
    assert kept.longest([3, 4], limit=2) == (None, 0)
    assert kept.longest([1, 2], limit=2)[1] == 2
    kept.put([7] * 100, row([7] * 100))  # larger than the budget: not kept
    assert len(kept) == 2
