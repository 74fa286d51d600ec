"""Entries under (primary key, Vary secondary key), least recently used first out, bounded in bytes.

Each primary key remembers the Vary of its latest stored response; a lookup computes the request's
secondary key from those names. A response with a different Vary replaces all variants of its primary key
(they were keyed on other fields and could no longer be found correctly).
"""

from __future__ import annotations

from collections import OrderedDict

from shieldwall.cache.entry import Entry, EntryKey
from shieldwall.cache.request import SecondaryKey


class Variants:
    __slots__ = ("entries", "vary")

    def __init__(self, vary: tuple[bytes, ...]) -> None:
        self.vary = vary
        self.entries: dict[SecondaryKey, Entry] = {}


class Store:
    __slots__ = ("_lru", "_primaries", "bytes", "evictions", "max_bytes")

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self.evictions = 0
        self._lru: OrderedDict[EntryKey, Entry] = OrderedDict()
        self._primaries: dict[bytes, Variants] = {}

    def __len__(self) -> int:
        return len(self._lru)

    def variants(self, primary: bytes) -> Variants | None:
        return self._primaries.get(primary)

    def get(self, key: EntryKey) -> Entry | None:
        return self._lru.get(key)

    def touch(self, entry: Entry) -> None:
        self._lru.move_to_end(entry.key)

    def put(self, entry: Entry) -> None:
        """Store (replacing the same key), then evict the least recently used until within max_bytes.
        An entry is never bigger than max_bytes (CacheConfig guarantees max_object_bytes ≤ max_bytes), so
        the new entry itself is never the one evicted."""
        primary, secondary = entry.key
        variants = self._primaries.get(primary)
        if variants is not None and variants.vary != entry.vary:
            for old in list(variants.entries.values()):
                self.remove(old)
            variants = None
        if variants is None:
            variants = self._primaries[primary] = Variants(entry.vary)
        replaced = variants.entries.get(secondary)
        if replaced is not None:
            del self._lru[replaced.key]  # so that the new entry goes in as the most recently used
            self.bytes -= replaced.size
        variants.entries[secondary] = entry
        self._lru[entry.key] = entry
        self.bytes += entry.size
        while self.bytes > self.max_bytes:
            _, oldest = self._lru.popitem(last=False)
            self._forget(oldest)
            self.evictions += 1

    def remove(self, entry: Entry) -> None:
        if self._lru.get(entry.key) is entry:
            del self._lru[entry.key]
            self._forget(entry)

    def _forget(self, entry: Entry) -> None:
        self.bytes -= entry.size
        primary, secondary = entry.key
        variants = self._primaries[primary]
        del variants.entries[secondary]
        if not variants.entries:
            del self._primaries[primary]
