"""shared_prefixes: groups of prompts that begin alike, checked by hand."""

from selfrag.lm.shared_prefixes import SharedPrefix, shared_prefixes


def test_a_querys_passage_prompts_share_the_query_not_the_template():
    template = [1, 2, 3]
    query_a = template + [10] * 20
    query_b = template + [20] * 20
    prompts = [query_a + [7, 8], query_b + [5], query_a + [9], query_b + [6, 6, 6], [4] * 30]
    groups = shared_prefixes(prompts, min_tokens=4)
    assert groups[4] == SharedPrefix()  # shares nothing
    assert groups[0].length == groups[2].length == 23  # the query, not the 3-token template
    assert groups[1].length == groups[3].length == 23
    assert groups[0].group == groups[2].group != groups[1].group == groups[3].group


def test_every_member_keeps_its_last_token():
    prompts = [[1] * 20, [1] * 20 + [2], [1] * 20 + [3, 4]]
    groups = shared_prefixes(prompts, min_tokens=4)
    assert {g.group for g in groups} == {0}
    assert all(g.length == 19 for g in groups)  # the shortest prompt needs its 20th token


def test_the_partition_that_saves_most_tokens_wins():
    # one group of all three shares 10 tokens (saves 2 x 10); the pair shares 30 (saves 30)
    base = [5] * 10
    prompts = [base + [1] * 20 + [2], base + [1] * 20 + [3], base + [9] * 25]
    groups = shared_prefixes(prompts, min_tokens=4)
    assert groups[0].length == groups[1].length == 30 and groups[0].group == groups[1].group
    assert groups[2] == SharedPrefix()


def test_short_common_beginnings_and_lone_prompts_are_not_grouped():
    assert shared_prefixes([[1, 2, 3, 4], [1, 2, 3, 5]], min_tokens=16) == [SharedPrefix()] * 2
    assert shared_prefixes([[1] * 40], min_tokens=4) == [SharedPrefix()]
    assert shared_prefixes([]) == []
