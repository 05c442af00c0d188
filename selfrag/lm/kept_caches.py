"""Key/value caches kept from one call for the next (transformers backend).

Self-RAG's calls follow each other with prompts that extend earlier ones: short form continues a
query's decision prompt with each passage, long form continues a node's prompt and its generated
segment with the next passages. A call made with ``GenerationRequest(keep_cache=True)`` leaves
each row's cache (prompt and generated tokens) here; a later call starts any prompt from the
kept cache that shares the most tokens with it, truncated to the shared tokens (keys and values
of a token depend only on the tokens up to it).

Finding that cache: among sorted token sequences, the one sharing the longest beginning with a
query is next to where the query would be inserted, so a binary search and two comparisons do it.
Caches are dropped least recently used first beyond a byte budget.
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Sequence

from selfrag.lm.kv_rows import RowCache, cache_bytes, truncate
from selfrag.lm.shared_prefixes import common_length


class KeptCaches:
    """Row caches by their token sequence, within ``budget`` bytes.

    Args:
        budget: most bytes of keys and values kept; 0 keeps nothing.
    """

    def __init__(self, budget: int):
        self.budget, self.used = budget, 0
        self._caches: OrderedDict[tuple[int, ...], RowCache] = OrderedDict()  # oldest use first
        self._sorted: list[tuple[int, ...]] = []

    def __len__(self) -> int:
        return len(self._caches)

    def put(self, tokens: Sequence[int], cache: RowCache) -> None:
        key, size = tuple(tokens), cache_bytes(cache)
        if not key or size > self.budget:
            return
        if key in self._caches:
            self._caches.move_to_end(key)
            return
        self._caches[key] = cache
        bisect.insort(self._sorted, key)
        self.used += size
        while self.used > self.budget:
            old, dropped = self._caches.popitem(last=False)
            self._sorted.pop(bisect.bisect_left(self._sorted, old))
            self.used -= cache_bytes(dropped)

    def longest(self, tokens: Sequence[int], limit: int) -> tuple[RowCache | None, int]:
        """The kept cache sharing the most of ``tokens``' first ``limit`` tokens, cut to the
        shared tokens, and their number (``(None, 0)``: none shares any)."""
        query = tuple(tokens[:limit])
        at = bisect.bisect_left(self._sorted, query)
        best, shared = None, 0
        for key in self._sorted[max(at - 1, 0): at + 1]:
            n = common_length(key, query)
            if n > shared:
                best, shared = key, n
        if best is None:
            return None, 0
        self._caches.move_to_end(best)
        return truncate(self._caches[best], shared), shared

    def clear(self) -> None:
        self._caches.clear()
        self._sorted.clear()
        self.used = 0
