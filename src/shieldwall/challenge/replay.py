"""Single use: the ids of answered challenges, remembered until their tokens expire, in bounded memory.

A token cannot be used after it expires anyway, so an id is kept only until then. The table is an
OrderedDict in order of use: expired entries are dropped from its front as new ones arrive, and when it
is full the oldest entry goes first even if its token has not expired yet. That gives a flood of valid
answers a way to make an old token usable twice, but only by solving the flood's own challenges (each
one costs work and is bound to one client), and memory stays capped: ~185 bytes an entry (tracemalloc: the
key string, the expiry and the table's share), so the default 100,000 entries hold ~19 MB per worker.

The set is per worker process. With the reuseport steering (one client prefix, one worker) a token comes
back to the worker that remembers it; without it, a replay to another worker is possible within the
token's lifetime, from the same client prefix and User-Agent only.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Final

DEFAULT_MAX_ENTRIES: Final = 100_000


class ReplaySet:
    __slots__ = ("_seen", "max_entries")

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES) -> None:
        if max_entries < 1:
            raise ValueError("a replay set needs room for at least one entry")
        self.max_entries = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def first_use(self, key: str, expires: float, now: float) -> bool:
        """Record `key` as used until `expires`; False when it was already used and has not expired."""
        seen = self._seen
        known = seen.get(key)
        if known is not None:
            if known > now:
                return False
            del seen[key]
        while seen and (len(seen) >= self.max_entries or next(iter(seen.values())) <= now):
            seen.popitem(last=False)
        seen[key] = expires
        return True
