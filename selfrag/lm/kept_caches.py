"""Key/value caches kept from one call for the next (transformers backend).

Self-RAG's calls follow each other with prompts that extend earlier ones: short form continues a
query's decision prompt with each passage, long form continues a node's prompt and its generated
segment with the next passages. A call made with ``GenerationRequest(keep_cache=True)`` leaves
each row's cache (its prompt and generated tokens) for the next call, and only for it. That call
starts any prompt that begins with a kept row's whole prompt from that row's cache, cut to the
tokens they share (keys and values of a token depend only on the tokens up to it).

Only whole prompts, and only from the call before: a result then depends on its own calls alone,
not on which chunk of a run came before (a resumed run writes the same file as an uninterrupted
one).

Finding the row: among sorted token sequences, the one sharing the longest beginning with a
query is next to where the query would be inserted, so a binary search and two comparisons do it.
Beyond a byte budget, the rows kept first are dropped first.
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
        self._caches: OrderedDict[tuple[int, ...], tuple[RowCache, int]] = OrderedDict()
        self._sorted: list[tuple[int, ...]] = []

    def __len__(self) -> int:
        return len(self._caches)

    def put(self, tokens: Sequence[int], cache: RowCache, prompt_length: int) -> None:
        """Keep ``cache`` of ``tokens``, whose first ``prompt_length`` were the row's prompt."""
        key, size = tuple(tokens), cache_bytes(cache)
        if not key or size > self.budget or key in self._caches:
            return
        self._caches[key] = (cache, prompt_length)
        bisect.insort(self._sorted, key)
        self.used += size
        while self.used > self.budget:
            old, (dropped, _) = self._caches.popitem(last=False)
            self._sorted.pop(bisect.bisect_left(self._sorted, old))
            self.used -= cache_bytes(dropped)

    def longest(self, tokens: Sequence[int], limit: int) -> tuple[RowCache | None, int]:
        """The kept row whose whole prompt begins ``tokens`` and that shares the most of their
        first ``limit`` tokens: its cache cut to the shared tokens, and their number
        (``(None, 0)``: no row's prompt begins ``tokens``)."""
        query, whole = tuple(tokens[:limit]), tuple(tokens)
        at = bisect.bisect_left(self._sorted, query)
        best, shared = None, 0
        for key in self._sorted[max(at - 1, 0): at + 1]:
            cache, prompt_length = self._caches[key]
            n = common_length(key, query)
            if n > shared and common_length(key, whole) >= prompt_length:
                best, shared = cache, n
        if best is None:
            return None, 0
        return truncate(best, shared), shared

