"""Counting what is open right now, per key: connections per client, requests at the origin per client.

A key is held only while something is open, so a table never holds more keys than there are open
things: bounded by the connection caps, whatever the number of distinct clients.
"""

from __future__ import annotations


class OpenCounts:
    """How many things each key has open; `limit` (0 = none) caps them."""

    __slots__ = ("_counts", "limit")

    def __init__(self, limit: int = 0) -> None:
        self.limit = limit
        self._counts: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._counts)

    def total(self) -> int:
        return sum(self._counts.values())

    def can_open(self, key: str) -> bool:
        return not self.limit or self._counts.get(key, 0) < self.limit

    def open(self, key: str) -> None:
        self._counts[key] = self._counts.get(key, 0) + 1

    def acquire(self, key: str) -> bool:
        """Open one for `key` if under the limit; False (nothing counted) when at it."""
        if not self.can_open(key):
            return False
        self.open(key)
        return True

    def release(self, key: str) -> None:
        left = self._counts[key] - 1
        if left:
            self._counts[key] = left
        else:
            del self._counts[key]
