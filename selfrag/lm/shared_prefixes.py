"""Which prompts of a call begin with the same tokens, and how many of those tokens to share.

Self-RAG sends a model many prompts that differ only at their end: short form continues a
query's prompt once per passage (``prompt + [Retrieval]<paragraph>…``), long form continues a
node's history once per passage at every depth. The keys and values of a shared beginning are the
same in every such prompt (they depend only on the tokens and their positions), so a backend can
compute them once per group and let each member compute only its own end.

:func:`shared_prefixes` groups prompts without knowing where they came from. Sorted in token
order, prompts that share a beginning are neighbours, and the prefix shared by a contiguous run is
the smallest common prefix of neighbouring pairs in it. A dynamic programme over the sorted list
(runs of at most :data:`MAX_GROUP` prompts) picks the runs that save the most tokens,
``(members - 1) x shared tokens``: a query's K passage prompts form one group at the depth of the
query, not one group of every prompt at the depth of the instruction template they all share.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

#: Fewest tokens worth sharing: below this, copying keys and values costs about what it saves.
MIN_SHARED_TOKENS = 16
#: Most prompts in one group (bounds the dynamic programme's work per prompt).
MAX_GROUP = 64


@dataclass(frozen=True)
class SharedPrefix:
    """A prompt's place in a group: its group number (-1: none) and the tokens it shares."""

    group: int = -1
    length: int = 0


def common_length(a: Sequence[int], b: Sequence[int]) -> int:
    """How many tokens ``a`` and ``b`` share from their start."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n


def shared_prefixes(encoded: Sequence[Sequence[int]], min_tokens: int = MIN_SHARED_TOKENS,
                    ) -> list[SharedPrefix]:
    """Per prompt, the group it joins and the length of the prefix the group shares.

    Every member keeps at least its last token to itself (the next-token distribution is computed
    at that position). Groups have at least two members and share at least ``min_tokens`` tokens;
    among such partitions of the sorted prompts, the one that saves the most tokens is returned.
    """
    n = len(encoded)
    order = sorted(range(n), key=lambda i: list(encoded[i]))
    # common[j]: tokens shared by the sorted neighbours j-1 and j
    common = [0] + [common_length(encoded[order[j - 1]], encoded[order[j]]) for j in range(1, n)]
    saved = [0] * (n + 1)  # saved[end]: most tokens saved by groups among the first `end` prompts
    start, depth = list(range(n + 1)), [0] * (n + 1)
    for end in range(1, n + 1):
        saved[end], start[end] = saved[end - 1], end - 1  # the last prompt alone
        shared, shortest = len(encoded[order[end - 1]]), len(encoded[order[end - 1]])
        for first in range(end - 2, max(-1, end - 1 - MAX_GROUP), -1):
            shared = min(shared, common[first + 1])
            shortest = min(shortest, len(encoded[order[first]]))
            usable = min(shared, shortest - 1)
            if usable < min_tokens:
                break  # runs reaching further back share no more
            gain = saved[first] + (end - first - 1) * usable
            if gain > saved[end]:
                saved[end], start[end], depth[end] = gain, first, usable
    result = [SharedPrefix()] * n
    end, group = n, 0
    while end > 0:
        first = start[end]
        if end - first > 1:
            for j in range(first, end):
                result[order[j]] = SharedPrefix(group, depth[end])
            group += 1
        end = first
    return result
