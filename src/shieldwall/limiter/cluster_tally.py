"""Cluster-wide limits, the sans-io half: what a worker admitted per bucket since it last synced with Redis,
and what it does with the answer (docs/policy.md#cluster-wide-limits).

Redis holds one GCRA bucket per cluster-scoped bucket: its TAT on Redis's clock. A limit rule with
`scope = "cluster"` still judges every request with the worker's own GCRA bucket, and its ClusterTally
counts what that bucket admitted (`add`: one dict update per request). Every `[cluster] sync_interval`,
the worker's background task (dataplane/cluster_limits.py) takes the counts (`Reconciler.plan`) and sends
them in one atomic script call (cluster/limits.py): Redis advances each shared bucket by its count and
answers what each one owes now. The worker raises its own bucket to that (`Reconciler.settle`,
`Gcra.owe_until`): after a sync every worker's bucket owes at least what the whole cluster's does, and
the hot path never waits for Redis.

Why a shared TAT rather than shared counters (each worker adding its count to a counter and charging
itself the growth it did not cause): with counters every worker keeps a private view, and whatever one
view misses (the history before a worker's first sync, a sync that failed, a counter that expired) stays
missed for good. Under a flood the views then never converge, and the worker whose view was charged most
is refused nearly everything while another serves the cluster's whole rate (simulated with three workers:
375, 19 and 35 admissions in 10 s). With a shared TAT every sync brings each worker to the same view.

Where a batch goes: the requests a worker reports came at some time since its previous sync (`age`
ago). Redis counts them from the start of that time, so they are set against any time the shared bucket
sat idle meanwhile, as one bucket would have done. Counting them from the moment of the sync instead
refuses traffic that keeps to the rate as a whole whenever `burst` is below about rate * sync_interval.

Bounded: a tally holds at most `max_keys` buckets with counts and as many recently active ones; a sync
carries at most MAX_SYNC_KEYS buckets of all rules, the busiest first (the others keep their counts for a
later sync). Stdlib only: no asyncio, no Redis.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from operator import attrgetter
from typing import Final

from shieldwall.limiter.gcra import Gcra

LINGER: Final = 10.0
"""Seconds a bucket that admitted nothing here is still synced (with a count of 0), so what the rest of
the cluster admits keeps arriving while its traffic may come back here; past that it is not synced."""
MAX_TALLIED: Final = 10_000
"""Buckets a rule's tally holds with counts, and recently active ones it keeps syncing."""
MAX_SYNC_KEYS: Final = 500
"""Buckets one sync carries (docs/policy.md gives what a sync of that many costs Redis)."""


class ClusterTally:
    """One cluster-scoped limit rule's admissions per bucket since the last sync. `gcra` is the rule's
    own limiter: the one a sync raises to the shared bucket's TAT."""

    __slots__ = ("active", "gcra", "max_keys", "pending", "untallied")

    def __init__(self, gcra: Gcra, max_keys: int = MAX_TALLIED) -> None:
        self.gcra = gcra
        self.max_keys = max_keys
        self.pending: dict[str, int] = {}  # bucket -> requests admitted here since the last sync
        self.active: dict[
            str, float
        ] = {}  # bucket -> the last sync that carried its admissions; oldest first
        self.untallied = 0  # admissions not shared with the cluster: max_keys buckets were pending

    def add(self, key: str, count: int = 1) -> None:
        """`count` requests admitted in `key`'s bucket here (per request: one dict update)."""
        pending = self.pending
        before = pending.get(key)
        if before is not None:
            pending[key] = before + count
        elif len(pending) < self.max_keys:
            pending[key] = count
        else:
            self.untallied += count

    def take(self, now: float) -> dict[str, int]:
        """The buckets to sync now, each with its count: those with admissions since the last sync, and
        those that had some within LINGER seconds (0). Counting starts again from nothing."""
        counts, self.pending = self.pending, {}
        active = self.active
        while active:
            key, since = next(iter(active.items()))
            if now - since <= LINGER:
                break
            del active[key]
        for key in active:
            counts.setdefault(key, 0)
        return counts

    def settle(self, key: str, count: int, owed: float, now: float) -> None:
        """The shared bucket owes `owed` seconds after this worker's `count` went in: this worker's
        bucket owes at least as much."""
        self.gcra.owe_until(key, now + owed, now)
        if count:
            active = self.active
            if active.pop(key, None) is None and len(active) >= self.max_keys:
                del active[next(iter(active))]  # the one idle longest
            active[key] = now


@dataclass(frozen=True, slots=True)
class SyncItem:
    """One bucket in one sync: its rule, its key, and what this worker admitted in it since the last."""

    rule: str
    key: str
    count: int
    tally: ClusterTally

    @property
    def interval(self) -> float:
        """Seconds per request in the rule's bucket (1 / rate)."""
        return self.tally.gcra.interval


@dataclass(frozen=True, slots=True)
class Plan:
    """One sync: the buckets, and how long ago the previous sync was (their requests came since)."""

    items: list[SyncItem]
    age: float


class Reconciler:
    """Every cluster-scoped rule of a worker (rule name -> its tally), synced together."""

    def __init__(
        self, tallies: Mapping[str, ClusterTally], now: float, max_keys: int = MAX_SYNC_KEYS
    ) -> None:
        """`now`: when the tallies started counting."""
        self.tallies = dict(tallies)
        self.max_keys = max_keys
        self.deferred = 0  # buckets a sync left for a later one (the cap)
        self._last = now

    @property
    def untallied(self) -> int:
        return sum(tally.untallied for tally in self.tallies.values())

    def plan(self, now: float) -> Plan:
        """The buckets to send now, the busiest first, at most `max_keys`; the counts of those left out go
        back to their tallies for a later sync. A plan whose sync fails is dropped: its counts were
        limited by the buckets here, and the rest of the cluster does without them."""
        items = [
            SyncItem(rule, key, count, tally)
            for rule, tally in self.tallies.items()
            for key, count in tally.take(now).items()
        ]
        if len(items) > self.max_keys:
            items.sort(key=attrgetter("count"), reverse=True)
            for item in items[self.max_keys :]:
                if item.count:
                    item.tally.add(item.key, item.count)
            self.deferred += len(items) - self.max_keys
            del items[self.max_keys :]
        age, self._last = now - self._last, now
        return Plan(items, age)

    def settle(self, plan: Plan, owed: Sequence[float], now: float) -> None:
        """Redis answered what each shared bucket of the plan owes now (seconds), in order."""
        for item, seconds in zip(plan.items, owed, strict=True):
            item.tally.settle(item.key, item.count, seconds, now)
