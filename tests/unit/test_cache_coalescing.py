"""Request coalescing: one origin fetch for many identical misses; every waiter handed back exactly once."""

from __future__ import annotations

from collections.abc import Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from shieldwall.cache import Bypass, Cache, CacheConfig, Flight, Lookup, LookupKind, Outcome
from shieldwall.http1.request import RequestHead, validate_request_head

Fields = Sequence[tuple[bytes, bytes]]

T0 = 1000.0
OK = [(b"Cache-Control", b"max-age=60")]


def head(headers: Fields = (), method: bytes = b"GET", target: bytes = b"/hot") -> RequestHead:
    return validate_request_head(method, target, b"1.1", [(b"Host", b"example.org"), *headers])


def burst(
    cache: Cache[object], n: int, now: float = T0, headers: Fields = ()
) -> tuple[list[str], list[Lookup[object]]]:
    """n identical requests at once: the lookups and their waiter objects."""
    waiters = [f"w{i}" for i in range(n)]
    return waiters, [cache.lookup(head(headers), b"http", now, w) for w in waiters]


def led(result: Lookup[object]) -> Flight[object]:
    """The flight a MISS leads."""
    assert result.kind is LookupKind.MISS and result.flight is not None, result.kind
    return result.flight


def respond(
    cache: Cache[object],
    flight: Flight[object],
    fields: Fields = OK,
    body: bytes = b"body",
    now: float = T0,
) -> Outcome[object]:
    builder = cache.begin(flight, 200, fields, now)
    if builder is not None:
        builder.feed(body)
    return cache.finish(flight, builder, now)


def test_n_misses_make_one_leader_and_n_minus_1_followers_all_served_on_success() -> None:
    cache = Cache[object](CacheConfig())
    waiters, results = burst(cache, 50)
    leader, followers = results[0], results[1:]
    assert leader.kind is LookupKind.MISS
    assert all(r.kind is LookupKind.MISS_COALESCED and r.flight is leader.flight for r in followers)
    assert cache.stats()["followers"] == 49
    outcome = respond(cache, led(leader))
    assert outcome.entry is not None and outcome.entry.body == b"body"
    assert outcome.serve == waiters[1:] and outcome.release == []
    stats = cache.stats()
    assert (stats["misses"], stats["coalesced"], stats["flights"], stats["followers"]) == (1, 49, 0, 0)
    assert cache.lookup(head(), b"http", T0 + 1, "late").kind is LookupKind.FRESH


def test_head_requests_follow_a_get_fetch() -> None:
    cache = Cache[object](CacheConfig())
    leader = cache.lookup(head(), b"http", T0, "get")
    follower = cache.lookup(head(method=b"HEAD"), b"http", T0, "head")
    assert follower.kind is LookupKind.MISS_COALESCED
    assert respond(cache, led(leader)).serve == ["head"]


def test_an_uncacheable_response_releases_the_followers_who_then_bypass() -> None:
    cache = Cache[object](CacheConfig())
    waiters, results = burst(cache, 5)
    flight = led(results[0])
    assert cache.begin(flight, 200, [(b"Cache-Control", b"private")], T0) is None
    outcome = cache.finish(flight, None, T0)
    assert outcome.entry is None and outcome.serve == [] and outcome.release == waiters[1:]
    # released waiters look up again: the key is known uncacheable, so nobody queues behind a new leader
    again = [cache.lookup(head(), b"http", T0, w) for w in outcome.release]
    assert all(r.kind is LookupKind.BYPASS and r.reason is Bypass.UNCACHEABLE for r in again)


def test_a_body_growing_past_the_object_limit_releases_the_followers_mid_stream() -> None:
    cache = Cache[object](CacheConfig(max_object_bytes=2000, max_bytes=10_000))
    waiters, results = burst(cache, 3)
    flight = led(results[0])
    builder = cache.begin(flight, 200, OK, T0)
    assert builder is not None
    assert builder.feed(b"x" * 1000)
    assert not builder.feed(b"x" * 1000)  # too big: stop teeing
    assert not builder.feed(b"x")
    outcome = cache.finish(flight, builder, T0)
    assert outcome.release == waiters[1:] and len(cache) == 0
    assert cache.stats()["too_big"] == 1


def test_a_declared_length_over_the_limit_is_refused_at_the_head() -> None:
    cache = Cache[object](CacheConfig(max_object_bytes=2000, max_bytes=10_000))
    _, results = burst(cache, 1)
    assert cache.begin(led(results[0]), 200, OK, T0, content_length=5000) is None
    assert cache.begin(led(results[0]), 200, OK, T0, content_length=100) is not None


def test_an_origin_error_without_a_stale_copy_releases_the_followers() -> None:
    cache = Cache[object](CacheConfig())
    waiters, results = burst(cache, 4)
    outcome = cache.fail(led(results[0]), T0)
    assert outcome.entry is None and outcome.release == waiters[1:]
    # no uncacheable mark: the next lookup leads a new fetch, the rest coalesce behind it
    again = [cache.lookup(head(), b"http", T0, w) for w in outcome.release]
    assert [r.kind for r in again] == [LookupKind.MISS, LookupKind.MISS_COALESCED, LookupKind.MISS_COALESCED]


def test_an_origin_error_with_a_stale_copy_serves_it_to_everyone() -> None:
    cache = Cache[object](CacheConfig(stale_if_error=300))
    respond(cache, led(burst(cache, 1)[1][0]))
    waiters, results = burst(cache, 4, now=T0 + 100)
    assert results[0].kind is LookupKind.MISS
    outcome = cache.fail(led(results[0]), T0 + 100)
    assert outcome.entry is not None and outcome.serve == waiters[1:] and outcome.release == []
    assert cache.stats()["stale_served"] == 4  # the leader and its three followers


def test_abandon_releases_everyone_and_marks_nothing() -> None:
    cache = Cache[object](CacheConfig())
    waiters, results = burst(cache, 3)
    outcome = cache.abandon(led(results[0]))
    assert outcome.release == waiters[1:]
    assert cache.lookup(head(), b"http", T0, "next").kind is LookupKind.MISS


def test_a_follower_that_leaves_is_not_handed_back() -> None:
    cache = Cache[object](CacheConfig())
    waiters, results = burst(cache, 3)
    flight = led(results[0])
    assert not cache.leave(flight, "w1")  # waiters are the data plane's objects, matched by identity
    assert cache.leave(flight, waiters[1])
    assert not cache.leave(flight, waiters[1])
    assert respond(cache, flight).serve == [waiters[2]]


def test_ending_a_flight_twice_changes_nothing() -> None:
    cache = Cache[object](CacheConfig())
    _, results = burst(cache, 2)
    flight = led(results[0])
    assert respond(cache, flight).serve == ["w1"]
    assert cache.fail(flight, T0).serve == [] and cache.finish(flight, None, T0).release == []
    assert cache.abandon(flight).release == [] and cache.begin(flight, 200, OK, T0) is None
    assert cache.lookup(head(), b"http", T0, "x").kind is LookupKind.FRESH  # not marked uncacheable


def test_followers_are_bounded_per_key_and_in_total() -> None:
    cache = Cache[object](CacheConfig(max_followers_per_key=3, max_followers=5))
    _, results = burst(cache, 6)
    assert [r.kind for r in results].count(LookupKind.MISS_COALESCED) == 3
    assert results[-1].reason is Bypass.FOLLOWERS_FULL
    other = [cache.lookup(head(target=b"/other"), b"http", T0, i) for i in range(5)]
    full = Bypass.FOLLOWERS_FULL
    assert [r.reason for r in other] == [None, None, None, full, full]  # 3 + 2 = 5 in total


def test_a_fetch_older_than_the_coalesce_timeout_takes_no_more_followers() -> None:
    cache = Cache[object](CacheConfig(coalesce_timeout=30))
    burst(cache, 1)
    assert cache.lookup(head(), b"http", T0 + 30, "a").kind is LookupKind.MISS_COALESCED
    assert cache.lookup(head(), b"http", T0 + 30.1, "b").reason is Bypass.FLIGHT_OVERDUE


def test_followers_that_differ_in_a_varied_field_are_released() -> None:
    cache = Cache[object](CacheConfig())
    leader = cache.lookup(head([(b"Accept-Encoding", b"gzip")]), b"http", T0, "gzip")
    same = cache.lookup(head([(b"Accept-Encoding", b"gzip")]), b"http", T0, "gzip2")
    other = cache.lookup(head([(b"Accept-Encoding", b"br")]), b"http", T0, "br")
    assert same.kind is other.kind is LookupKind.MISS_COALESCED  # the Vary is not known yet
    outcome = respond(cache, led(leader), [*OK, (b"Vary", b"accept-encoding")])
    assert outcome.serve == ["gzip2"] and outcome.release == ["br"]
    assert cache.lookup(head([(b"Accept-Encoding", b"br")]), b"http", T0, "br").kind is LookupKind.MISS


@settings(max_examples=200, deadline=None)
@given(
    steps=st.lists(
        st.tuples(st.sampled_from(["req", "ok", "private", "fail", "abandon", "leave"]), st.integers(0, 2)),
        max_size=60,
    )
)
def test_every_waiter_is_handed_back_exactly_once(steps: list[tuple[str, int]]) -> None:
    """Whatever interleaving of requests and fetch outcomes, a follower comes back once, or left."""
    cache = Cache[int](CacheConfig(max_followers_per_key=4, max_followers=6, uncacheable_ttl=0))
    targets = [b"/a", b"/b", b"/c"]
    waiting: dict[int, Flight[int]] = {}  # waiter -> the flight it follows
    flights: dict[bytes, Flight[int]] = {}  # target -> the flight a leader is fetching
    handed_back: list[int] = []
    now = T0
    for serial, (action, index) in enumerate(steps):
        now += 100  # every entry is stale again at each step: lookups miss or coalesce
        target = targets[index]
        flight = flights.get(target)
        if action == "req":
            result = cache.lookup(head(target=target), b"http", now, serial)
            if result.kind is LookupKind.MISS:
                assert flight is None and result.flight is not None
                flights[target] = result.flight
            elif result.kind is LookupKind.MISS_COALESCED:
                assert flight is not None and result.flight is flight
                waiting[serial] = flight
            else:
                assert result.kind is LookupKind.BYPASS
        elif action == "leave":
            mine = [w for w, f in waiting.items() if f is flight]
            if flight is not None and mine:
                assert cache.leave(flight, mine[0])
                del waiting[mine[0]]
        elif flight is not None:
            del flights[target]
            if action in ("ok", "private"):
                fields = OK if action == "ok" else [(b"Cache-Control", b"private")]
                builder = cache.begin(flight, 200, fields, now)
                outcome = cache.finish(flight, builder, now)
            elif action == "fail":
                outcome = cache.fail(flight, now)
            else:
                outcome = cache.abandon(flight)
            back = outcome.serve + outcome.release
            assert sorted(back) == sorted(w for w, f in waiting.items() if f is flight)
            for waiter in back:
                del waiting[waiter]
            handed_back.extend(back)
        assert cache.stats()["followers"] == len(waiting) <= 6
    assert len(handed_back) == len(set(handed_back))


def test_with_a_known_vary_each_variant_gets_its_own_fetch() -> None:
    cache = Cache[object](CacheConfig())
    gzip = [(b"Accept-Encoding", b"gzip")]
    first = cache.lookup(head(gzip), b"http", T0, "first")
    respond(cache, led(first), [*OK, (b"Vary", b"Accept-Encoding")])
    later = T0 + 61  # stale: both variants are fetched again
    again = cache.lookup(head(gzip), b"http", later, "gzip")
    brotli = cache.lookup(head([(b"Accept-Encoding", b"br")]), b"http", later, "br")
    follower = cache.lookup(head(gzip), b"http", later, "gzip2")
    assert again.kind is brotli.kind is LookupKind.MISS and again.flight is not brotli.flight
    assert follower.flight is again.flight


def test_a_flight_keeps_its_followers_when_the_stale_copy_is_dropped_meanwhile() -> None:
    cache = Cache[object](CacheConfig(stale_if_error=10))
    respond(cache, led(cache.lookup(head(), b"http", T0, "first")))
    refetch = cache.lookup(head(), b"http", T0 + 65, "leader")
    assert refetch.kind is LookupKind.MISS and len(cache) == 1
    late = cache.lookup(head(), b"http", T0 + 75, "late")  # the copy is past its window and dropped
    assert len(cache) == 0
    assert late.kind is LookupKind.MISS_COALESCED and late.flight is refetch.flight
