"""The cache as a shield: what to do with a request (lookup), and the life of an origin fetch that may fill
the cache (begin → Builder.feed … → finish, or fail / abandon).

Every flight handed out (MISS, STALE_REVALIDATE) must be ended exactly once with finish, fail or abandon;
the followers it returns are then the caller's to answer. See the package docstring for the data plane's
side of the contract.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Generic

from shieldwall.cache.coalescing import Coalescer, Flight, W
from shieldwall.cache.config import CacheConfig
from shieldwall.cache.entry import ENTRY_OVERHEAD, Builder, Entry
from shieldwall.cache.request import Bypass, KeyRules, classify_request, secondary_key
from shieldwall.cache.response import freshness
from shieldwall.cache.store import Store
from shieldwall.http1.request import RequestHead

# Keys recently found uncacheable: bounded by count (their keys are at most a request line long).
MAX_UNCACHEABLE_KEYS = 4096


class LookupKind(Enum):
    FRESH = "fresh"  # serve `entry`
    STALE = "stale"  # serve `entry` (stale, allowed: overloaded origin, or a refresh is already under way)
    STALE_REVALIDATE = "stale_revalidate"  # serve `entry`, and fetch in the background to end `flight`
    MISS = "miss"  # fetch from the origin: this request leads `flight`
    # wait: the waiter follows `flight`; Cache.finish/fail/abandon of that flight hands it back
    MISS_COALESCED = "miss_coalesced"
    BYPASS = "bypass"  # not the cache's business: to the origin as usual (`reason` says why)


class Lookup(Generic[W]):
    __slots__ = ("entry", "flight", "kind", "reason")

    def __init__(
        self,
        kind: LookupKind,
        entry: Entry | None = None,
        flight: Flight[W] | None = None,
        reason: Bypass | None = None,
    ) -> None:
        self.kind = kind
        self.entry = entry
        self.flight = flight
        self.reason = reason


@dataclass(slots=True)
class Outcome(Generic[W]):
    """How a flight ended. `serve`: waiters to answer with `entry` (HEAD ones without the body).
    `release`: waiters the cache cannot answer; call lookup() again for each (they either bypass or
    coalesce behind a new leader), or, after fail(), answer them with the leader's error."""

    entry: Entry | None = None
    serve: list[W] = field(default_factory=list)
    release: list[W] = field(default_factory=list)


@dataclass(slots=True)
class CacheCounters:
    hits: int = 0  # FRESH
    stale_served: int = 0  # STALE, STALE_REVALIDATE, and stale copies handed out by fail()
    misses: int = 0  # MISS (origin fetches led)
    refreshes: int = 0  # STALE_REVALIDATE (background fetches asked for)
    coalesced: int = 0  # MISS_COALESCED
    bypassed: int = 0
    stored: int = 0
    uncacheable: int = 0  # responses that could not be stored (policy or size)
    too_big: int = 0


class Cache(Generic[W]):
    """Sans-io: one per worker; time is the monotonic `now` of the caller. `W` is the data plane's waiter
    type (e.g. its Exchange). Set `origin_overloaded` from admission control: while True, stale copies within
    their stale-if-error window are served instead of fetching, and clients' no-cache is not honoured."""

    def __init__(self, config: CacheConfig) -> None:
        self.config = config
        self.origin_overloaded = False
        self.counters = CacheCounters()
        self._rules = KeyRules.from_config(config)
        self._store = Store(config.max_bytes)
        self._flights: Coalescer[W] = Coalescer(config.max_followers_per_key, config.max_followers)
        self._uncacheable: OrderedDict[bytes, float] = OrderedDict()
        self._bypass: dict[Bypass, Lookup[W]] = {
            reason: Lookup(LookupKind.BYPASS, reason=reason) for reason in Bypass
        }

    # ------------------------------------------------------------------ requests

    def lookup(self, head: RequestHead, scheme: bytes, now: float, waiter: W) -> Lookup[W]:
        """What to do with a validated request. `waiter` is kept only when the answer is MISS_COALESCED."""
        request = classify_request(head, scheme, self._rules)
        if isinstance(request, Bypass):
            return self._bypassed(request)
        primary = request.primary
        fields = head.headers
        vary: tuple[bytes, ...] | None = None
        entry: Entry | None = None
        variants = self._store.variants(primary)
        if variants is not None:
            vary = variants.vary
            entry = variants.entries.get(secondary_key(vary, fields))
        counters = self.counters
        flights = self._flights
        if entry is not None:
            overloaded = self.origin_overloaded
            revalidate = request.revalidate and self.config.honour_client_no_cache and not overloaded
            staleness = entry.staleness(now)
            if staleness < 0 and not revalidate:
                self._store.touch(entry)
                counters.hits += 1
                return Lookup(LookupKind.FRESH, entry)
            if not revalidate:
                if overloaded and staleness < entry.stale_if_error:
                    self._store.touch(entry)
                    counters.stale_served += 1
                    return Lookup(LookupKind.STALE, entry)
                if staleness < entry.stale_while_revalidate:
                    self._store.touch(entry)
                    counters.stale_served += 1
                    if request.head_only or request.solo is not None or flights.find(primary, fields):
                        return Lookup(LookupKind.STALE, entry)
                    counters.refreshes += 1
                    refresh = flights.lead(primary, vary, fields, now)
                    return Lookup(LookupKind.STALE_REVALIDATE, entry, refresh)
            if staleness >= entry.stale_if_error and staleness >= entry.stale_while_revalidate:
                self._store.remove(entry)  # past every window: of no use any more

        if self._uncacheable and self._recently_uncacheable(primary, now):
            return self._bypassed(Bypass.UNCACHEABLE)
        flight = flights.find(primary, fields)
        if flight is not None:
            if now - flight.started > self.config.coalesce_timeout:
                return self._bypassed(Bypass.FLIGHT_OVERDUE)
            if not flights.follow(flight, waiter, fields):
                return self._bypassed(Bypass.FOLLOWERS_FULL)
            counters.coalesced += 1
            return Lookup(LookupKind.MISS_COALESCED, None, flight)
        if request.head_only:
            return self._bypassed(Bypass.HEAD_MISS)
        if request.solo is not None:
            return self._bypassed(request.solo)
        counters.misses += 1
        return Lookup(LookupKind.MISS, None, flights.lead(primary, vary, fields, now))

    def leave(self, flight: Flight[W], waiter: W) -> bool:
        """A follower stops waiting (client gone, or waited coalesce_timeout). False if it was not waiting."""
        return self._flights.leave(flight, waiter)

    # ------------------------------------------------------------------ the leader's fetch

    def begin(
        self,
        flight: Flight[W],
        status: int,
        fields: Sequence[tuple[bytes, bytes]],
        now: float,
        content_length: int | None = None,
    ) -> Builder | None:
        """The leader's response head arrived. A Builder to feed the body to, or None when the response will
        not be stored (policy, or a declared length over max_object_bytes): then call finish(flight, None)
        at once so that the followers go on without waiting for the body. `fields`: end-to-end (name, value)
        pairs as they are to be replayed, hop-by-hop ones already removed; an Age field among them is read,
        then left out of the replay."""
        if flight.done:
            return None
        fresh = freshness(status, fields, self.config)
        if fresh is None:
            self.counters.uncacheable += 1
            return None
        kept = tuple((name, value) for name, value in fields if name.lower() != b"age")
        limit = self.config.max_object_bytes
        builder = Builder(
            status, kept, fresh, received_at=now, base_size=len(flight.primary) + ENTRY_OVERHEAD, limit=limit
        )
        if builder.too_big or (content_length is not None and builder.size + content_length > limit):
            self.counters.too_big += 1
            self.counters.uncacheable += 1
            return None
        return builder

    def finish(self, flight: Flight[W], builder: Builder | None, now: float) -> Outcome[W]:
        """The leader's response is complete (builder), or was found not storable (None, or a builder whose
        feed() answered False). Stores it and hands back the followers it can answer; the rest are
        released. An unstorable response marks its key uncacheable for uncacheable_ttl."""
        if flight.done:
            return Outcome()
        followers = self._flights.end(flight)
        if builder is None or builder.too_big:
            if builder is not None:
                self.counters.too_big += 1
                self.counters.uncacheable += 1
            self._mark_uncacheable(flight.primary, now)
            return Outcome(release=[waiter for waiter, _ in followers])
        fresh = builder.freshness
        secondary = secondary_key(fresh.vary, flight.leader_fields)
        entry = Entry(
            (flight.primary, secondary),
            builder.status,
            fields=builder.fields,
            head_fields=builder.head_fields,
            body=builder.body(),
            freshness=fresh,
            stored_at=builder.received_at,
        )
        self._store.put(entry)
        self._uncacheable.pop(flight.primary, None)
        self.counters.stored += 1
        outcome: Outcome[W] = Outcome(entry)
        for waiter, fields in followers:
            if secondary_key(fresh.vary, fields) == secondary:
                outcome.serve.append(waiter)
            else:
                outcome.release.append(waiter)
        return outcome

    def fail(self, flight: Flight[W], now: float) -> Outcome[W]:
        """The fetch failed: no connection, timeout, an invalid response, or an origin error status
        (response.is_origin_error: 500/502/503/504, before any of it was sent to the client). When a stale
        copy is within its stale-if-error window, `entry` is it and `serve` holds every follower (answer the
        leader with it too); otherwise the followers are in `release`."""
        if flight.done:
            return Outcome()
        followers = [waiter for waiter, _ in self._flights.end(flight)]
        entry = None
        if flight.secondary is not None:
            entry = self._store.get((flight.primary, flight.secondary))
        if entry is not None and entry.vary == flight.vary and entry.may_serve_if_error(now):
            self.counters.stale_served += 1 + len(followers)
            return Outcome(entry, serve=followers)
        return Outcome(release=followers)

    def abandon(self, flight: Flight[W]) -> Outcome[W]:
        """The leader gave up before learning anything about the response (its client left and the data
        plane will not finish the fetch for the cache). Every follower is released."""
        return Outcome(release=[waiter for waiter, _ in self._flights.end(flight)])

    # ------------------------------------------------------------------ telemetry

    @property
    def bytes_stored(self) -> int:
        return self._store.bytes

    def __len__(self) -> int:
        return len(self._store)

    def stats(self) -> dict[str, int]:
        """Counters and gauges for telemetry, by name."""
        counters = self.counters
        return {
            "hits": counters.hits,
            "stale_served": counters.stale_served,
            "misses": counters.misses,
            "refreshes": counters.refreshes,
            "coalesced": counters.coalesced,
            "bypassed": counters.bypassed,
            "stored": counters.stored,
            "uncacheable": counters.uncacheable,
            "too_big": counters.too_big,
            "evictions": self._store.evictions,
            "bytes_stored": self._store.bytes,
            "entries": len(self._store),
            "flights": self._flights.count,
            "followers": self._flights.followers,
        }

    # ------------------------------------------------------------------ internals

    def _bypassed(self, reason: Bypass) -> Lookup[W]:
        self.counters.bypassed += 1
        return self._bypass[reason]

    def _recently_uncacheable(self, primary: bytes, now: float) -> bool:
        until = self._uncacheable.get(primary)
        if until is None:
            return False
        if now < until:
            return True
        del self._uncacheable[primary]
        return False

    def _mark_uncacheable(self, primary: bytes, now: float) -> None:
        if self.config.uncacheable_ttl <= 0:
            return
        self._uncacheable[primary] = now + self.config.uncacheable_ttl
        self._uncacheable.move_to_end(primary)
        while len(self._uncacheable) > MAX_UNCACHEABLE_KEYS:
            self._uncacheable.popitem(last=False)
