"""Bounded summaries of a request stream: the heaviest keys, how many distinct clients, a fair sample.

A flood may come from a million addresses, so nothing here grows with the number of distinct keys: a
Space-Saving table keeps at most `capacity` keys, a HyperLogLog is 2**p one-byte registers, a reservoir
holds at most `capacity` items. Each is updated per request in a worker and merged across workers in
the supervisor, so every one of them has a merge whose error is stated below.

Hashes that leave a process (HyperLogLog registers) come from blake2b, never from hash(): Python salts
str hashes per interpreter, so two workers (or one worker after a restart) would disagree on them.
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from hashlib import blake2b
from typing import Any, Final, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Summary:
    """A heavy-hitter summary in Space-Saving form that can travel (tuples only) and merge with others.

    For every listed `(key, count, error)`: count - error <= true frequency <= count. Any key not listed
    occurred at most `floor` times, and every error is at most `floor`. `n` is the length of the stream
    summarised; a `HeavyHitters` of capacity k has floor <= n / (k + 1), so every key more frequent than
    that is listed. Entries are sorted by count, largest first."""

    entries: tuple[tuple[str, int, int], ...]
    floor: int
    n: int

    @staticmethod
    def merge(parts: Iterable[Summary], capacity: int) -> Summary:
        """The summary of the concatenated streams, keeping the `capacity` largest counts.

        A key missing from part i may still have occurred up to floor_i times there, so it is counted as
        floor_i with error floor_i (Agarwal et al., "Mergeable summaries", 2012): counts stay upper
        bounds and count - error stays a lower bound. Hence, with N the total length, every error is at
        most the sum of the parts' floors, which is <= N / (k + 1) when each part was kept with capacity
        k; a part truncated to its t <= k largest entries has floor <= its n / (t + 1). Every key more
        frequent than the merged floor is listed."""
        parts = list(parts)
        base = sum(part.floor for part in parts)
        extra: dict[str, list[int]] = {}
        for part in parts:
            for key, count, error in part.entries:
                slot = extra.get(key)
                if slot is None:
                    extra[key] = [count - part.floor, error - part.floor]
                else:
                    slot[0] += count - part.floor
                    slot[1] += error - part.floor
        merged = sorted(
            ((key, base + more, base + err) for key, (more, err) in extra.items()),
            key=_by_count_then_key,
        )
        # Every merged key has count >= base, so a dropped key bounds the unlisted ones from above.
        floor = max(base, merged[capacity][1]) if len(merged) > capacity else base
        return Summary(tuple(merged[:capacity]), floor, sum(part.n for part in parts))

    def top_share(self) -> float:
        """The largest share of the stream one key is guaranteed to have (count - error over n)."""
        if not self.n:
            return 0.0
        return max((count - error for _, count, error in self.entries), default=0) / self.n

    def to_wire(self) -> list[object]:
        return [self.floor, self.n, [list(entry) for entry in self.entries]]

    @staticmethod
    def from_wire(data: Any) -> Summary:
        floor, n, entries = _as_list(data, 3)
        rows = (_as_list(entry, 3) for entry in _as_list(entries))
        return Summary(
            tuple((str(key), int(count), int(error)) for key, count, error in rows),
            int(floor),
            int(n),
        )


def _by_count_then_key(entry: tuple[str, int, int]) -> tuple[int, str]:
    return (-entry[1], entry[0])


def _as_list(data: Any, length: int | None = None) -> list[Any]:
    if not isinstance(data, list) or (length is not None and len(data) != length):
        raise ValueError(f"expected a list of {length} items, got {type(data).__name__}")
    return data


class HeavyHitters:
    """The most frequent keys of a stream in at most 2 * `capacity` counters, O(1) amortised per add.

    This is Space-Saving (Metwally et al., 2005) kept in its Misra-Gries form, the two being the same
    summary written two ways (Agarwal et al., 2012), with evictions batched. Each key has an exact
    count since it was last admitted. When 2k keys are held, the (k+1)-th largest count c is
    subtracted from all of them and those left at zero or below are dropped: a C sort every k new keys
    instead of a min-structure touched on every one. `floor` is the sum of those c. Since each
    subtraction takes c from at least k + 1 counts, and the counts never add up to more than n,
    floor <= n / (k + 1); and a key's true frequency lies within [count, count + floor].

    Measured at k=1024 on the 2-core dev machine (Python 3.11): 0.07 µs per add of a tracked key and
    0.13 µs per add when every key is new (a flood from distinct addresses). A Space-Saving table with
    a lazily refreshed min-heap took 0.8-1.5 µs in the second case: it evicts on every new key."""

    __slots__ = ("_counts", "_limit", "capacity", "floor", "n")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.floor = 0
        self.n = 0
        self._limit = 2 * capacity
        self._counts: dict[str, int] = {}

    def __len__(self) -> int:
        return len(self._counts)

    def add(self, key: str, weight: int = 1) -> None:
        """Count `key` `weight` times (a sampled request standing for `weight` requests)."""
        self.n += weight
        counts = self._counts
        count = counts.get(key)
        if count is not None:
            counts[key] = count + weight
        else:
            counts[key] = weight
            if len(counts) >= self._limit:
                self._prune()

    def _prune(self) -> None:
        cut = sorted(self._counts.values(), reverse=True)[self.capacity]
        self.floor += cut
        self._counts = {key: count - cut for key, count in self._counts.items() if count > cut}

    def summary(self, limit: int | None = None) -> Summary:
        """The tracked keys in Space-Saving form (count = upper bound, error = floor), largest first;
        at most `limit` of them (the summary's floor then also covers the ones left out)."""
        floor = self.floor
        entries = sorted(
            ((key, count + floor, floor) for key, count in self._counts.items()), key=_by_count_then_key
        )
        if limit is not None and len(entries) > limit:
            floor = max(floor, entries[limit][1])
            entries = entries[:limit]
        return Summary(tuple(entries), floor, self.n)


# HyperLogLog -------------------------------------------------------------------------------------------

_HASH_BITS: Final = 64
MIN_PRECISION: Final = 4
MAX_PRECISION: Final = 18
_ALPHA_INF: Final = 1 / (2 * math.log(2))


class HyperLogLog:
    """Distinct-count estimate in 2**p one-byte registers, relative error about 1.04 / sqrt(2**p):
    1.6 % at p=12 (4 KiB), 0.8 % at p=14 (16 KiB). The union of two sketches is their register-wise
    maximum, exactly the sketch of the union of the two streams, so merging adds no error.

    The estimate is Ertl's improved estimator ("New cardinality estimation algorithms for HyperLogLog
    sketches", 2017, algorithm 6): unbiased from 0 to far beyond 10**9 without HLL++'s empirical bias
    tables or a switch to linear counting, and computed from a register histogram (bytes.count)."""

    __slots__ = ("_mask", "_q", "precision", "registers")

    def __init__(self, precision: int = 14, registers: bytes | bytearray | None = None) -> None:
        if not MIN_PRECISION <= precision <= MAX_PRECISION:
            raise ValueError(f"precision must be {MIN_PRECISION}..{MAX_PRECISION}")
        self.precision = precision
        self._q = _HASH_BITS - precision
        self._mask = (1 << self._q) - 1
        if registers is None:
            self.registers = bytearray(1 << precision)
        elif len(registers) != 1 << precision or registers.translate(None, bytes(range(self._q + 2))):
            raise ValueError(f"registers do not fit precision {precision}")
        else:
            self.registers = bytearray(registers)

    def add(self, key: str) -> None:
        # blake2b's 8-byte digest costs ~0.4 µs for an address. hash() costs 0.02 µs but is salted per
        # process; zlib.crc32 (0.05 µs) is linear, which leaves the structure of consecutive addresses
        # in the bits that HyperLogLog needs spread evenly.
        h = int.from_bytes(blake2b(key.encode(), digest_size=8).digest(), "little")
        rank = self._q - (h & self._mask).bit_length() + 1
        index = h >> self._q
        if rank > self.registers[index]:  # noqa: PLR1730 (hot path: max() is a call)
            self.registers[index] = rank

    def merge(self, other: HyperLogLog) -> None:
        """Fold `other` into this sketch (same precision required)."""
        if other.precision != self.precision:
            raise ValueError("HyperLogLog sketches of different precision do not merge")
        # Register-wise max over all 2**p bytes at once, as big-integer arithmetic (SWAR): registers are
        # below 0x80, so in (a | 0x80) - b no byte borrows from its neighbour and its top bit says a >= b.
        # 55 µs at p=14 where a Python loop over the bytes takes 470 µs.
        size = len(self.registers)
        high = _high_bits(size)
        a = int.from_bytes(self.registers, "little")
        b = int.from_bytes(other.registers, "little")
        a_wins = (((a | high) - b) & high) >> 7
        mask = (a_wins << 8) - a_wins
        self.registers = bytearray(((a & mask) | (b & ~mask)).to_bytes(size, "little"))

    def copy(self) -> HyperLogLog:
        return HyperLogLog(self.precision, self.registers)

    def estimate(self) -> float:
        m, q, registers = len(self.registers), self._q, self.registers
        # The histogram of register values, counted upwards until every register is accounted for:
        # values cluster around log2(n / m), so this scans the registers ~20 times rather than q + 2.
        histogram = [0] * (q + 2)
        counted = 0
        for value in range(q + 2):
            if counted == m:
                break
            histogram[value] = registers.count(value)
            counted += histogram[value]
        z = m * _tau(1 - histogram[q + 1] / m)
        for k in range(q, 0, -1):
            z = 0.5 * (z + histogram[k])
        z += m * _sigma(histogram[0] / m)
        return _ALPHA_INF * m * m / z


@functools.cache
def _high_bits(size: int) -> int:
    return int.from_bytes(b"\x80" * size, "little")


def _sigma(x: float) -> float:
    if x == 1.0:
        return math.inf
    y, z = 1.0, x
    while True:
        x *= x
        previous = z
        z += x * y
        y += y
        if z == previous:
            return z


def _tau(x: float) -> float:
    if x in (0.0, 1.0):
        return 0.0
    y, z = 1.0, 1 - x
    while True:
        x = math.sqrt(x)
        previous = z
        y *= 0.5
        z -= (1 - x) ** 2 * y
        if z == previous:
            return z / 3


# Reservoir ---------------------------------------------------------------------------------------------


class Reservoir(Generic[T]):
    """A uniform random sample of at most `capacity` items of a stream (Li's algorithm L, 1994).

    Algorithm L draws how many items to skip before the next replacement, so most items cost one
    increment and one comparison, and the caller learns *before* building an item whether it will be
    kept: `if sample.wants(): sample.put(features_of(view))` builds feature vectors only for the few
    requests that are sampled."""

    __slots__ = ("_next", "_rng", "_slot", "_w", "capacity", "items", "seen")

    def __init__(self, capacity: int, rng: random.Random | None = None) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.items: list[T] = []
        self.seen = 0  # items offered so far
        self._rng = rng if rng is not None else random.Random()
        self._w = math.exp(math.log(self._uniform()) / capacity)
        self._next = capacity + self._skip()  # the 1-based number of the next item to keep
        self._slot = -1

    def wants(self) -> bool:
        """Count one more item of the stream; True when that item must be handed to put()."""
        self.seen += 1
        if self.seen <= self.capacity:
            self._slot = self.seen - 1
            return True
        if self.seen < self._next:
            return False
        self._slot = self._rng.randrange(self.capacity)
        self._w *= math.exp(math.log(self._uniform()) / self.capacity)
        self._next += self._skip()
        return True

    def put(self, item: T) -> None:
        """Store the item that the last wants() asked for."""
        if self._slot == len(self.items):
            self.items.append(item)
        else:
            self.items[self._slot] = item

    def offer(self, item: T) -> None:
        if self.wants():
            self.put(item)

    def _uniform(self) -> float:
        """A uniform number in (0, 1): random() may return 0.0, whose log is undefined."""
        u = self._rng.random()
        while u == 0.0:
            u = self._rng.random()
        return u

    def _skip(self) -> int:
        if self._w >= 1.0:  # rounding; the next item is kept, as the limit of the formula says
            return 1
        return int(math.log(self._uniform()) / math.log1p(-self._w)) + 1


def merge_samples(
    parts: Sequence[tuple[int, Sequence[T]]], capacity: int, rng: random.Random
) -> tuple[int, list[T]]:
    """A uniform sample of the union of several streams from a uniform sample of each.

    `parts` holds (items seen, sample) per stream; every sample must hold min(seen, capacity) items or
    more. How many items come from each stream is drawn as without replacement from the streams' sizes
    (multivariate hypergeometric), then that many are chosen at random within its sample: every item of
    the union is then equally likely, so a busy worker is not outvoted by an idle one."""
    for seen, items in parts:
        if len(items) < min(seen, capacity):
            raise ValueError("a part's sample is smaller than the merged capacity")
    remaining = [seen for seen, _ in parts]
    total = sum(remaining)
    taken = [0] * len(parts)
    for _ in range(min(capacity, total)):
        pick = rng.randrange(total)
        part = 0
        while pick >= remaining[part]:
            pick -= remaining[part]
            part += 1
        remaining[part] -= 1
        taken[part] += 1
        total -= 1
    merged: list[T] = []
    for (_, items), count in zip(parts, taken, strict=True):
        merged.extend(rng.sample(list(items), count))
    return sum(seen for seen, _ in parts), merged
