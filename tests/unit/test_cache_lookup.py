"""Cache.lookup end to end: fresh hits, stale serving windows, Vary, Age, HEAD, and who may bypass."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from shieldwall.cache import Bypass, Cache, CacheConfig, Lookup, LookupKind, Outcome, shield
from shieldwall.http1.request import RequestHead, validate_request_head

Fields = Sequence[tuple[bytes, bytes]]

T0 = 1000.0


def head(method: bytes = b"GET", target: bytes = b"/page", headers: Fields = ()) -> RequestHead:
    return validate_request_head(method, target, b"1.1", [(b"Host", b"example.org"), *headers])


def fill(
    cache: Cache[object],
    lookup: Lookup[object],
    cache_control: bytes = b"max-age=60",
    body: bytes = b"hello",
    now: float = T0,
    extra: Fields = (),
) -> Outcome[object]:
    """Answer a lookup that leads a fetch with an origin response."""
    assert lookup.flight is not None, lookup.kind
    fields = [(b"Content-Type", b"text/plain"), (b"Cache-Control", cache_control), *extra]
    builder = cache.begin(lookup.flight, 200, fields, now, len(body))
    if builder is not None:
        assert builder.feed(body)
    return cache.finish(lookup.flight, builder, now)


def look(
    cache: Cache[object],
    now: float,
    *headers: tuple[bytes, bytes],
    method: bytes = b"GET",
    target: bytes = b"/page",
) -> Lookup[object]:
    return cache.lookup(head(method, target, headers), b"https", now, object())


def stored(
    cache_control: bytes = b"max-age=60",
    config: CacheConfig | None = None,
    body: bytes = b"hello",
    extra: Fields = (),
) -> Cache[object]:
    cache = Cache[object](config or CacheConfig())
    first = look(cache, T0)
    assert first.kind is LookupKind.MISS
    outcome = fill(cache, first, cache_control, body, extra=extra)
    assert outcome.entry is not None
    return cache


def test_a_miss_then_hits_until_the_lifetime_ends() -> None:
    cache = stored()
    hit = look(cache, T0 + 59.999)
    assert hit.kind is LookupKind.FRESH and hit.entry is not None and hit.entry.body == b"hello"
    assert look(cache, T0 + 60).kind is LookupKind.MISS  # fresh means age < lifetime
    stats = cache.stats()
    assert (stats["hits"], stats["misses"], stats["entries"]) == (1, 2, 1)
    assert stats["bytes_stored"] == cache.bytes_stored > len(b"hello")


def test_replay_fields_and_age() -> None:
    cache = stored(extra=[(b"Age", b"20")])
    entry = look(cache, T0 + 5.7).entry
    assert entry is not None
    assert entry.age_value(T0 + 5.7) == 25  # the origin's Age + 5.7 s stored here, rounded down
    assert (
        entry.head_lines(T0 + 5.7) == b"Content-Type: text/plain\r\nCache-Control: max-age=60\r\nAge: 25\r\n"
    )
    assert entry.head_lines(T0).endswith(b"Age: 20\r\n")  # the origin's own Age line is not replayed
    assert entry.fields == ((b"Content-Type", b"text/plain"), (b"Cache-Control", b"max-age=60"))


def test_an_aged_response_is_fresh_only_for_what_is_left_of_its_lifetime() -> None:
    cache = stored(extra=[(b"Age", b"50")], config=CacheConfig(stale_if_error=0))
    assert look(cache, T0 + 9.9).kind is LookupKind.FRESH
    assert look(cache, T0 + 10).kind is LookupKind.MISS


def test_head_is_served_from_the_get_entry_but_never_leads_a_fetch() -> None:
    cache = Cache[object](CacheConfig())
    miss = look(cache, T0, method=b"HEAD")
    assert miss.kind is LookupKind.BYPASS and miss.reason is Bypass.HEAD_MISS
    fill(cache, look(cache, T0))
    hit = look(cache, T0 + 1, method=b"HEAD")
    assert hit.kind is LookupKind.FRESH and hit.entry is not None and hit.entry.body == b"hello"


def test_two_variants_under_one_primary_key() -> None:
    cache = Cache[object](CacheConfig())
    vary = [(b"Vary", b"Accept-Encoding")]
    gzip = (b"Accept-Encoding", b"gzip")
    fill(cache, look(cache, T0, gzip), body=b"gzipped", extra=vary)
    brotli = look(cache, T0, (b"Accept-Encoding", b"br"))
    assert brotli.kind is LookupKind.MISS  # another variant: its own fetch
    fill(cache, brotli, body=b"brotli", extra=vary)
    plain = look(cache, T0)
    assert plain.kind is LookupKind.MISS  # no Accept-Encoding at all is a variant too
    fill(cache, plain, body=b"plain", extra=vary)
    assert len(cache) == 3
    for value, body in ((b"gzip", b"gzipped"), (b"br", b"brotli")):
        hit = look(cache, T0 + 1, (b"accept-encoding", value))
        assert hit.kind is LookupKind.FRESH and hit.entry is not None and hit.entry.body == body
    hit = look(cache, T0 + 1)
    assert hit.entry is not None and hit.entry.body == b"plain"


def test_a_changed_vary_replaces_the_old_variants() -> None:
    cache = Cache[object](CacheConfig())
    fill(cache, look(cache, T0, (b"Accept-Encoding", b"gzip")), extra=[(b"Vary", b"Accept-Encoding")])
    fill(cache, look(cache, T0, (b"Accept-Encoding", b"br")), extra=[(b"Vary", b"Accept-Encoding")])
    refetch = look(cache, T0 + 100, (b"Accept-Encoding", b"br"), (b"Accept-Language", b"fr"))
    fill(cache, refetch, body=b"new", now=T0 + 100, extra=[(b"Vary", b"Accept-Language")])
    assert len(cache) == 1
    hit = look(cache, T0 + 101, (b"Accept-Encoding", b"gzip"), (b"Accept-Language", b"fr"))
    assert hit.kind is LookupKind.FRESH and hit.entry is not None and hit.entry.body == b"new"


@pytest.mark.parametrize(
    "extra",
    [[(b"Vary", b"*")], [(b"Set-Cookie", b"id=1")], [(b"Cache-Control", b"private")]],
)
def test_unstorable_responses_are_not_stored_and_the_key_bypasses_for_a_while(extra: Fields) -> None:
    cache = Cache[object](CacheConfig(uncacheable_ttl=10))
    outcome = fill(cache, look(cache, T0), extra=extra)
    assert outcome.entry is None and len(cache) == 0
    assert look(cache, T0 + 9.9).reason is Bypass.UNCACHEABLE
    assert look(cache, T0 + 10).kind is LookupKind.MISS  # tried again after uncacheable_ttl


def test_a_stored_entry_is_never_served_to_an_authorised_or_signed_in_request() -> None:
    cache = stored()
    assert look(cache, T0 + 1, (b"Authorization", b"Basic eDp5")).reason is Bypass.AUTHORIZATION
    assert look(cache, T0 + 1, (b"Cookie", b"sessionid=1")).reason is Bypass.SESSION_COOKIE
    assert look(cache, T0 + 1, (b"Cookie", b"_ga=1")).kind is LookupKind.FRESH


def test_client_no_cache_is_ignored_by_default() -> None:
    cache = stored()
    assert look(cache, T0 + 1, (b"Cache-Control", b"no-cache")).kind is LookupKind.FRESH
    assert look(cache, T0 + 1, (b"Pragma", b"no-cache")).kind is LookupKind.FRESH


def test_client_no_cache_when_honoured_fetches_unless_the_origin_is_overloaded() -> None:
    cache = stored(config=CacheConfig(honour_client_no_cache=True))
    assert look(cache, T0 + 1, (b"Cache-Control", b"max-age=0")).kind is LookupKind.MISS
    cache = stored(config=CacheConfig(honour_client_no_cache=True))
    cache.origin_overloaded = True
    assert look(cache, T0 + 1, (b"Cache-Control", b"no-cache")).kind is LookupKind.FRESH


def test_conditional_range_and_no_store_requests_are_served_but_never_lead() -> None:
    cache = Cache[object](CacheConfig())
    for header, reason in (
        ((b"If-None-Match", b'"v1"'), Bypass.CONDITIONAL),
        ((b"Range", b"bytes=0-1"), Bypass.RANGE),
        ((b"Cache-Control", b"no-store"), Bypass.NO_STORE),
    ):
        assert look(cache, T0, header).reason is reason
    fill(cache, look(cache, T0))
    for header in ((b"If-None-Match", b'"v1"'), (b"Range", b"bytes=0-1"), (b"Cache-Control", b"no-store")):
        assert look(cache, T0 + 1, header).kind is LookupKind.FRESH


# ---- stale serving


def test_overloaded_origin_gets_stale_copies_within_stale_if_error_only() -> None:
    cache = stored(config=CacheConfig(stale_if_error=300))
    cache.origin_overloaded = True
    assert look(cache, T0 + 60).kind is LookupKind.STALE
    assert look(cache, T0 + 359.9).kind is LookupKind.STALE
    assert look(cache, T0 + 360).kind is LookupKind.MISS  # staleness 300 is past a 300 s window
    cache.origin_overloaded = False
    assert cache.stats()["stale_served"] == 2


def test_a_healthy_origin_is_asked_again_once_the_copy_is_stale() -> None:
    cache = stored(config=CacheConfig(stale_if_error=300))
    assert look(cache, T0 + 61).kind is LookupKind.MISS
    assert len(cache) == 1  # kept: it may still stand in if that fetch fails


@pytest.mark.parametrize(("offset", "served"), [(60, True), (359.999, True), (360, False), (500, False)])
def test_stale_if_error_window_boundaries(offset: float, served: bool) -> None:
    cache = stored(config=CacheConfig(stale_if_error=300))
    now = T0 + offset
    refetch = look(cache, now)
    assert refetch.kind is LookupKind.MISS and refetch.flight is not None
    outcome = cache.fail(refetch.flight, now)
    assert (outcome.entry is not None) is served


def test_origin_stale_if_error_longer_than_the_default() -> None:
    cache = stored(b"max-age=10, stale-if-error=1000", config=CacheConfig(stale_if_error=5))
    refetch = look(cache, T0 + 1009)
    assert refetch.flight is not None and cache.fail(refetch.flight, T0 + 1009).entry is not None


def test_must_revalidate_is_never_served_stale() -> None:
    cache = stored(b"max-age=10, must-revalidate", config=CacheConfig(stale_if_error=300))
    cache.origin_overloaded = True
    assert look(cache, T0 + 11).kind is LookupKind.MISS


def test_stale_while_revalidate_allows_one_background_refresh() -> None:
    cache = stored(b"max-age=10, stale-while-revalidate=20", config=CacheConfig(stale_if_error=0))
    first = look(cache, T0 + 15)
    assert first.kind is LookupKind.STALE_REVALIDATE and first.entry is not None and first.flight is not None
    second = look(cache, T0 + 16)
    assert second.kind is LookupKind.STALE and second.flight is None  # the refresh is under way
    head_only = look(cache, T0 + 16, method=b"HEAD")
    assert head_only.kind is LookupKind.STALE
    fill(cache, first, body=b"refreshed", now=T0 + 17)
    hit = look(cache, T0 + 18)
    assert hit.kind is LookupKind.FRESH and hit.entry is not None and hit.entry.body == b"refreshed"
    assert cache.stats()["refreshes"] == 1


def test_past_stale_while_revalidate_a_request_waits_for_the_fetch() -> None:
    cache = stored(b"max-age=10, stale-while-revalidate=20", config=CacheConfig(stale_if_error=0))
    refresh = look(cache, T0 + 29)
    assert refresh.kind is LookupKind.STALE_REVALIDATE
    late = look(cache, T0 + 30)  # staleness 20: the window is over, the copy is dropped
    assert late.kind is LookupKind.MISS_COALESCED and late.flight is refresh.flight
    assert len(cache) == 0


def test_an_entry_past_every_window_is_dropped() -> None:
    cache = stored(config=CacheConfig(stale_if_error=100))
    assert look(cache, T0 + 159).kind is LookupKind.MISS and len(cache) == 1
    cache = stored(config=CacheConfig(stale_if_error=100))
    assert look(cache, T0 + 160).kind is LookupKind.MISS and len(cache) == 0


def test_the_memory_of_uncacheable_keys_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shield, "MAX_UNCACHEABLE_KEYS", 3)
    cache = Cache[object](CacheConfig(uncacheable_ttl=60))
    for index in range(5):
        fill(cache, look(cache, T0, target=b"/k%d" % index), b"private")
    kinds = [look(cache, T0 + 1, target=b"/k%d" % index).kind for index in range(5)]
    assert kinds == [
        LookupKind.MISS,
        LookupKind.MISS,
        LookupKind.BYPASS,
        LookupKind.BYPASS,
        LookupKind.BYPASS,
    ]
