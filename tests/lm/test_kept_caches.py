"""KeptCaches: the kept cache sharing most of a prompt, cut to it; least recently used dropped."""

import torch

from selfrag.lm.kept_caches import KeptCaches
from selfrag.lm.kv_rows import cache_bytes


def row(tokens, layers=2):
    """A fake cache whose key at column i is the token i (so a cut is visible)."""
    column = torch.tensor(tokens, dtype=torch.float32)[None, :, None]  # [heads 1, tokens, dim 1]
    return [(column.clone(), -column.clone()) for _ in range(layers)]


def test_a_row_whose_prompt_begins_the_query_starts_it_cut_to_the_shared_tokens():
    kept = KeptCaches(budget=10**6)
    kept.put([1, 2, 3, 4], row([1, 2, 3, 4]), prompt_length=2)  # prompt [1, 2], generated [3, 4]
    kept.put([1, 2, 9], row([1, 2, 9]), prompt_length=3)
    kept.put([5, 6], row([5, 6]), prompt_length=2)
    cache, shared = kept.longest([1, 2, 3, 7, 7], limit=5)
    assert shared == 3 and cache[0][0].flatten().tolist() == [1, 2, 3]
    cache, shared = kept.longest([1, 2, 9, 9], limit=2)  # only the first 2 tokens may come from it
    assert shared == 2 and cache[1][1].flatten().tolist() == [-1, -2]
    assert kept.longest([7, 1], limit=2) == (None, 0)
    # [5, 7] shares a token with [5, 6], but does not begin with that row's whole prompt
    assert kept.longest([5, 7, 8], limit=3) == (None, 0)


def test_beyond_the_budget_the_first_kept_rows_go_first():
    size = cache_bytes(row([1, 2]))
    kept = KeptCaches(budget=2 * size)
    for tokens in ([1, 2], [3, 4], [5, 6]):
        kept.put(tokens, row(tokens), prompt_length=1)
    assert len(kept) == 2 and kept.used == 2 * size
    assert kept.longest([1, 2], limit=2) == (None, 0)
    assert kept.longest([3, 4], limit=2)[1] == 2
    kept.put([7] * 100, row([7] * 100), prompt_length=1)  # larger than the budget: not kept
    assert len(kept) == 2
