"""plan_batches: exact optimum of padded tokens + a per-batch cost, checked by hand."""

import itertools

import pytest

from selfrag.lm.batch_planning import plan_batches


def cost(lengths, batches, batch_cost):
    return sum(len(b) * max(lengths[i] for i in b) + batch_cost for b in batches)


def test_hand_computed_plan():
    # lengths 10, 9, 1, 1 with 5 per batch: [10 9][1 1] costs 2*10 + 2*1 + 2*5 = 32; one batch
    # 4*10 + 5 = 45; [10][9][1 1] 10 + 9 + 2 + 15 = 36; [10 9 1][1] 30 + 1 + 10 = 41.
    assert plan_batches([1, 10, 1, 9], max_batch=4, batch_cost=5) == [[1, 3], [0, 2]]
    assert cost([1, 10, 1, 9], [[1, 3], [0, 2]], 5) == 32


def test_free_batches_remove_all_padding_and_expensive_ones_fill_batches():
    lengths = [7, 3, 5, 3, 7]
    free = plan_batches(lengths, max_batch=8, batch_cost=0)
    assert cost(lengths, free, 0) == sum(lengths)  # no padding at all
    assert plan_batches(lengths, max_batch=8, batch_cost=1000) == [[0, 4, 2, 1, 3]]
    # three batches of at most 2 either way: [7 7][5][3 3] pads nothing (25), [7 7][5 3][3] 27
    assert plan_batches(lengths, max_batch=2, batch_cost=1000) == [[0, 4], [2], [1, 3]]


def test_plan_is_the_brute_force_optimum():
    lengths = [12, 3, 40, 7, 7, 25, 3, 18]
    for max_batch, batch_cost in [(3, 0), (3, 20), (8, 50), (2, 10)]:
        plan = plan_batches(lengths, max_batch, batch_cost)
        assert sorted(i for b in plan for i in b) == list(range(len(lengths)))
        assert all(len(b) <= max_batch for b in plan)
        order = sorted(range(len(lengths)), key=lambda i: lengths[i], reverse=True)
        best = min(  # every cut of the sorted list into contiguous batches
            cost(lengths, [order[a:b] for a, b in zip((0, *cuts), (*cuts, len(order)))], batch_cost)
            for r in range(len(order))
            for cuts in itertools.combinations(range(1, len(order)), r)
            if all(b - a <= max_batch for a, b in zip((0, *cuts), (*cuts, len(order)))))
        assert cost(lengths, plan, batch_cost) == best


def test_empty_and_invalid():
    assert plan_batches([], max_batch=4) == []
    with pytest.raises(ValueError, match="max_batch"):
        plan_batches([3], max_batch=0)


def test_max_tokens_bounds_a_batchs_padded_size():
    lengths = [10, 10, 10, 10, 30]
    assert plan_batches(lengths, max_batch=8, batch_cost=1000) == [[4, 0, 1, 2, 3]]
    bounded = plan_batches(lengths, max_batch=8, batch_cost=1000, max_tokens=40)
    assert bounded == [[4], [0, 1, 2, 3]]  # 5 x 30 > 40; the 30-token prompt alone
    assert plan_batches([50], max_batch=8, max_tokens=40) == [[0]]  # too long: still computed
