"""The cache (shieldwall.cache) wired into one worker: which requests it answers, how the request that
fetches from the origin fills it, and what happens to the requests that wait on that fetch.

Where it sits: `ClientConnection._begin`, after the policy let a request through and before it takes a
request slot, an admission ticket or an origin connection. So a request the cache answers costs the origin
nothing and never waits in admission control's queue; a request that waits on another's fetch (a
follower) is its connection's current exchange, like a queued ticket, and nothing of it goes upstream.

- FRESH / STALE: the stored response is written at once (`X-Cache: HIT` / `STALE`, an `Age`, our `Via`).
- MISS: the request goes to the origin as usual and leads the fetch; upstream.py tees its response into a
  Builder. Its followers are answered from the stored entry when it completes, or released to decide
  again (the response could not be stored, or it varies on something they sent differently).
- STALE_REVALIDATE: there is no fetch without a client here, so the request that finds the copy past
  freshness (within stale-while-revalidate) is treated as a MISS: it waits for the origin and refreshes
  the copy, while every request after it gets the stale copy at once (that is what the cache answers
  while a refresh is under way). The cost of a refresh falls on one visitor instead of none.
- Origin failures (a 500/502/503/504 head from the origin; the shield's own 502/503/504 after retries,
  timeouts and a full pool; admission control's 503): a copy within its stale-if-error window answers the
  leader and every follower (`X-Cache: STALE`); without one, the followers get the leader's error status
  rather than going to a failing origin one by one, except after admission control's 503: that judged
  the leader's priority class, not theirs, so they decide again (and queue in their own class).
- While admission control has requests queued (the origin is saturated), stale copies within
  stale-if-error are served instead of fetching, and clients' no-cache is not honoured.
- A fill does not go at the pace of the leader's client: while the response is being stored, a client
  that reads slowly does not pause reading from the origin (what it has not taken waits in its
  transport's buffer, at most max_object_bytes, as much as the entry being built), so a slow reader
  cannot hold every follower up; past max_object_bytes the usual back-pressure applies again.
- A follower waits until its fetch is `coalesce_timeout` old (the sweeper checks), then decides again:
  it then goes to the origin on its own, through admission control. A follower whose client leaves
  leaves the fetch; a leader whose client leaves (or who is refused before reaching the origin) abandons
  it, and its followers decide again, so one of them leads the next fetch.

Responses that end with the connection (no length, not chunked) are passed on but never stored: a crash
of the origin would look the same as their end.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shieldwall.cache import (
    Builder,
    Bypass,
    Cache,
    CacheConfig,
    Entry,
    Flight,
    LookupKind,
    Outcome,
    field_pairs,
    is_origin_error,
)
from shieldwall.config.cache_schema import Cache as CacheSettings
from shieldwall.detector.counters import Outcome as Served
from shieldwall.http1.fields import HOP_BY_HOP, comma_tokens
from shieldwall.http1.forwarding import ResponseFields, ResponseFraming, status_line

if TYPE_CHECKING:
    from shieldwall.core.clock import Clock
    from shieldwall.dataplane.exchange import Exchange
    from shieldwall.dataplane.origin_door import OriginDoor

# A replayed body up to this size leaves in the same write as its head (one send() instead of two).
_JOIN_BODY_LIMIT = 64 * 1024


def cache_config(settings: CacheSettings) -> CacheConfig:
    """The `[cache]` section in the sans-io cache's terms (bytes where it compares bytes)."""
    return CacheConfig(
        max_bytes=settings.max_bytes,
        max_object_bytes=settings.max_object_bytes,
        default_ttl=settings.default_ttl,
        stale_if_error=settings.stale_if_error,
        stale_while_revalidate=settings.stale_while_revalidate,
        session_cookies=tuple(name.encode() for name in settings.session_cookies),
        key_cookies=tuple(name.encode() for name in settings.key_cookies),
        sort_query=settings.sort_query,
        honour_client_no_cache=settings.honour_client_no_cache,
        path_prefixes=tuple(prefix.encode() for prefix in settings.path_prefixes),
        max_followers_per_key=settings.max_followers_per_key,
        max_followers=settings.max_followers,
        coalesce_timeout=settings.coalesce_timeout,
        uncacheable_ttl=settings.uncacheable_ttl,
    )


class CacheState:
    """What the cache did with one exchange (`Exchange.cache`): `label` is the access log's `cache` field;
    a request that leads (`leads`) or follows an origin fetch holds that `flight`, and a leader whose
    response is being stored holds its `builder`. States without a flight are shared, never changed."""

    __slots__ = ("builder", "flight", "label", "leads", "shield")

    def __init__(
        self,
        label: str,
        flight: Flight[Exchange] | None = None,
        shield: CacheShield | None = None,
        *,
        leads: bool = False,
    ) -> None:
        self.label = label
        self.flight = flight
        self.shield = shield
        self.leads = leads
        self.builder: Builder | None = None

    @property
    def fetching(self) -> bool:
        """This exchange leads an origin fetch that has not ended yet."""
        return self.leads and self.flight is not None and not self.flight.done

    # The upstream connection's hooks for a leader (see upstream.py).

    def response_head(
        self, ex: Exchange, status: int, fields: ResponseFields, framing: ResponseFraming
    ) -> bool:
        assert self.shield is not None
        return self.shield.response_head(ex, status, fields, framing)

    def tee(self, ex: Exchange, data: bytes) -> None:
        """A chunk of the response body, as the client gets it (before any re-chunking)."""
        builder = self.builder
        if builder is not None and not builder.feed(data):
            self.builder = None  # over max_object_bytes: stop collecting, let the followers go now
            assert self.shield is not None and self.flight is not None
            self.shield.finish(self.flight, builder)
            if ex.client.write_paused_since and ex.upstream is not None:
                ex.upstream.pause_reading()  # no fill any more: the leader's own pace again

    def fetched(self) -> None:
        """The response is complete."""
        assert self.shield is not None and self.flight is not None
        builder, self.builder = self.builder, None
        self.shield.finish(self.flight, builder)


HIT = CacheState("hit")
STALE = CacheState("stale")
_BYPASSED = {reason: CacheState(f"bypass:{reason.value}") for reason in Bypass}


class CacheShield:
    """One per worker, only when `[cache] enabled = true` (ShieldServer.cache is None otherwise)."""

    def __init__(self, settings: CacheSettings, clock: Clock, door: OriginDoor | None, via: bytes) -> None:
        self.cache: Cache[Exchange] = Cache(cache_config(settings))
        self.clock = clock
        self.door = door
        self.via_line = b"Via: %s\r\n" % via
        self.coalesce_timeouts = 0
        self._flights: dict[Flight[Exchange], None] = {}  # fetches under way, oldest first

    # ---------------------------------------------------------------- requests

    def intercept(self, ex: Exchange) -> bool:
        """Called for every request the policy let through. True when the cache took it (answered it, or
        it waits on another request's fetch); False when it goes to the origin (it may lead a fetch)."""
        head = ex.head
        assert head is not None
        cache = self.cache
        door = self.door
        cache.origin_overloaded = door is not None and door.controller.queued > 0
        now = self.clock.monotonic()
        found = cache.lookup(head, ex.client.listener.scheme, now, ex)
        kind = found.kind
        if kind is LookupKind.BYPASS:
            assert found.reason is not None
            ex.cache = _BYPASSED[found.reason]
            return False
        if kind is LookupKind.FRESH or kind is LookupKind.STALE:
            assert found.entry is not None
            fresh = kind is LookupKind.FRESH
            ex.cache = HIT if fresh else STALE
            self.replay(ex, found.entry, stale=not fresh)
            return True
        flight = found.flight
        assert flight is not None
        if kind is LookupKind.MISS_COALESCED:
            ex.cache = CacheState("coalesced", flight, self)
            return True
        # MISS, or STALE_REVALIDATE treated as one (see the module docstring)
        label = "miss" if kind is LookupKind.MISS else "refresh"
        ex.cache = CacheState(label, flight, self, leads=True)
        self._flights[flight] = None
        return False

    def replay(self, ex: Exchange, entry: Entry, *, stale: bool) -> None:
        """Write a stored response as the complete answer to `ex` (no body for HEAD)."""
        head = ex.head
        assert head is not None
        client = ex.client
        ex.outcome = Served.CACHE
        keep_alive = head.keep_alive  # a request the cache answers has no body
        status = entry.status
        body = b"" if head.method == b"HEAD" else entry.body
        lines = [status_line(status), entry.head_lines(self.clock.monotonic()), self.via_line]
        lines.append(b"X-Cache: STALE\r\n" if stale else b"X-Cache: HIT\r\n")
        if status == 204:
            body = b""
        else:
            lines.append(b"Content-Length: %d\r\n" % len(entry.body))
        if not keep_alive:
            lines.append(b"Connection: close\r\n")
        elif head.version == b"1.0":
            lines.append(b"Connection: keep-alive\r\n")
        lines.append(b"\r\n")
        if len(body) <= _JOIN_BODY_LIMIT:
            lines.append(body)
            client.response_head(ex, b"".join(lines), status, keep_alive)
        else:
            client.response_head(ex, b"".join(lines), status, keep_alive)
            client.response_body(ex, body)
        client.finish_exchange(ex, keep_alive)

    def exchange_ended(self, ex: Exchange) -> None:
        """`ex` is done (answered, or its client left) while it may still be part of a fetch."""
        state = ex.cache
        assert state is not None
        flight = state.flight
        if flight is None or flight.done:
            return
        if state.leads:
            self._answer(self._ended(flight, self.cache.abandon(flight)))
        else:
            self.cache.leave(flight, ex)

    # ---------------------------------------------------------------- the leader's fetch

    def response_head(
        self, ex: Exchange, status: int, fields: ResponseFields, framing: ResponseFraming
    ) -> bool:
        """The origin's response head for a request that leads a fetch. True when a stale copy has
        answered the request instead (the origin sent an error): the caller drops the origin's response."""
        state = ex.cache
        assert state is not None and state.flight is not None
        flight = state.flight
        now = self.clock.monotonic()
        if is_origin_error(status):
            ex.response_at = now  # admission control measures the origin's time to this head
            return ex.client.stale_instead(ex, status)
        pairs = None if framing.close_delimited else _storable_fields(fields)
        builder = None
        if pairs is not None:
            builder = self.cache.begin(flight, status, pairs, now, framing.content_length)
        if builder is None:
            self.finish(flight, None)
        else:
            state.builder = builder
            if ex.client.write_paused_since and ex.upstream is not None:
                ex.upstream.resume_reading()  # the fill reads on, whatever the leader's pace
        return False

    def finish(self, flight: Flight[Exchange], builder: Builder | None) -> None:
        """The leader's response is complete (builder), or will not be stored (None, or too big)."""
        outcome = self.cache.finish(flight, builder, self.clock.monotonic())
        self._answer(self._ended(flight, outcome))

    def origin_failed(self, ex: Exchange, status: int, *, shed: bool = False) -> Entry | None:
        """The origin failed the fetch `ex` leads (`status`: what the shield would answer), or admission
        control shed `ex`. Answers the followers (a stale copy; else `status`, or after a shed, which
        judged the leader's class and not theirs, they decide again) and returns the stale copy for `ex`,
        if there is one."""
        state = ex.cache
        assert state is not None and state.flight is not None
        flight = state.flight
        if not state.leads or flight.done:
            return None
        outcome = self._ended(flight, self.cache.fail(flight, self.clock.monotonic()))
        self._answer(outcome, stale=True, error_status=None if shed else status)
        if outcome.entry is not None:
            ex.cache = STALE
        return outcome.entry

    # ---------------------------------------------------------------- periodic work and telemetry

    def on_tick(self, now: float) -> None:
        """Followers of a fetch older than coalesce_timeout stop waiting and decide again (they go to the
        origin on their own: the cache takes no new followers for such a fetch)."""
        timeout = self.cache.config.coalesce_timeout
        for flight in list(self._flights):
            if now - flight.started <= timeout:
                break
            for waiter, _ in list(flight.followers):
                self.cache.leave(flight, waiter)
                self.coalesce_timeouts += 1
                waiter.client.resume(waiter)

    def stats(self) -> dict[str, int]:
        """The cache's counters and gauges, and this module's own, by name."""
        return {**self.cache.stats(), "coalesce_timeouts": self.coalesce_timeouts}

    # ---------------------------------------------------------------- internals

    def _ended(self, flight: Flight[Exchange], outcome: Outcome[Exchange]) -> Outcome[Exchange]:
        self._flights.pop(flight, None)
        return outcome

    def _answer(
        self, outcome: Outcome[Exchange], *, stale: bool = False, error_status: int | None = None
    ) -> None:
        """Answer a finished fetch's followers: `serve` from the entry (a `stale` one after a failure);
        `release` with `error_status` when given, otherwise to decide again (cache, then the origin)."""
        entry = outcome.entry
        if outcome.serve:
            assert entry is not None
            for waiter in outcome.serve:
                if not waiter.cancelled:
                    if stale:
                        waiter.cache = STALE
                    self.replay(waiter, entry, stale=stale)
        for waiter in outcome.release:
            if waiter.cancelled:
                continue
            if error_status is not None:
                waiter.client.answer_upstream_failure(waiter, error_status, "the origin failed")
            else:
                waiter.client.resume(waiter)


def _storable_fields(fields: ResponseFields) -> list[tuple[bytes, bytes]] | None:
    """The origin's end-to-end fields as (name, value) pairs for the entry, its Via kept (ours is added at
    each replay); None when its Connection field names fields to drop (rare: not worth storing)."""
    pairs = field_pairs(fields.lines)
    for lname, value in fields.handled:
        if lname == b"via":
            pairs.append((b"Via", value))
        elif lname == b"connection" and set(comma_tokens(value)) - HOP_BY_HOP:
            return None
    return pairs
