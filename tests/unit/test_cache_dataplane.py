"""The cache in the data plane, with fake transports and a FakeClock: hits never reach the origin, many
identical misses make one origin request, stale copies stand in when the origin fails or is saturated,
and what must not be shared (Set-Cookie, session cookies, other variants) is not."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fake_transport import FakeTransport
from rig import Rig

from shieldwall.cache import CacheConfig
from shieldwall.config import ConfigError, parse_config
from shieldwall.config.cache_schema import Cache as CacheSettings
from shieldwall.dataplane.cache_shield import cache_config

CACHEABLE = b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 5\r\n\r\nfirst"


def cache_rig(make_rig: Callable[..., Rig], extra: dict[str, object] | None = None, **cache: object) -> Rig:
    return make_rig({"cache": {"enabled": True, **cache}, **(extra or {})})


def get(path: str = "/page", *extra: str, method: str = "GET") -> bytes:
    lines = "".join(f"{line}\r\n" for line in extra)
    return f"{method} {path} HTTP/1.1\r\nHost: h\r\n{lines}\r\n".encode()


def response(max_age: int, body: bytes, *fields: str) -> bytes:
    lines = "".join(f"{line}\r\n" for line in (f"Cache-Control: max-age={max_age}", *fields))
    return f"HTTP/1.1 200 OK\r\n{lines}Content-Length: {len(body)}\r\n\r\n".encode() + body


def visitor(rig: Rig, number: int) -> tuple[FakeTransport, object]:
    transport = FakeTransport((f"198.51.100.{number}", 40000))
    return transport, rig.connect(transport)


def fill(rig: Rig, path: str = "/page", answer: bytes = CACHEABLE) -> None:
    """One request through to the origin, whose response is stored."""
    rig.client.data_received(get(path))
    rig.origin_says(answer)
    assert rig.client_t.take().endswith(answer[-5:])


def origin_requests(rig: Rig) -> list[bytes]:
    """Every request line the origin received so far (and forget them)."""
    lines = []
    for transport in rig.upstreams:
        data = transport.take()
        lines += [line for line in data.split(b"\r\n") if line.startswith((b"GET ", b"HEAD "))]
    return lines


def header(raw: bytes, name: bytes) -> bytes | None:
    for line in raw.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        key, _, value = line.partition(b": ")
        if key.lower() == name.lower():
            return value
    return None


# --- hits --------------------------------------------------------------------------------------------


def test_a_hit_is_answered_without_the_origin(make_rig) -> None:
    rig = cache_rig(make_rig)
    fill(rig)
    origin_requests(rig)
    rig.clock.advance(7.5)
    rig.client.data_received(get())
    out = rig.client_t.take()
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"\r\n\r\nfirst")
    assert header(out, b"X-Cache") == b"HIT"
    assert header(out, b"Age") == b"7"
    assert header(out, b"Cache-Control") == b"max-age=60"
    assert header(out, b"Via") == b"1.1 shieldwall"
    assert header(out, b"Content-Length") == b"5"
    assert origin_requests(rig) == [], "the origin saw nothing"
    assert not rig.client_t.closed, "kept alive"
    assert rig.server.cache is not None and rig.server.cache.stats()["hits"] == 1


def test_a_head_request_is_answered_from_a_get_entry_without_the_body(make_rig) -> None:
    rig = cache_rig(make_rig)
    fill(rig)
    origin_requests(rig)
    rig.client.data_received(get(method="HEAD"))
    out = rig.client_t.take()
    assert out.endswith(b"\r\n\r\n") and header(out, b"Content-Length") == b"5"
    assert origin_requests(rig) == []


def test_connection_close_and_http_1_0_are_honoured_on_a_hit(make_rig) -> None:
    rig = cache_rig(make_rig)
    fill(rig)
    transport, conn = visitor(rig, 2)
    conn.data_received(b"GET /page HTTP/1.0\r\nHost: h\r\nConnection: keep-alive\r\n\r\n")
    out = transport.take()
    assert header(out, b"Connection") == b"keep-alive" and not transport.closed
    conn.data_received(b"GET /page HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
    assert header(transport.take(), b"Connection") == b"close"
    assert transport.closed


def test_pipelined_hits_behind_a_miss_are_answered_in_order(make_rig) -> None:
    rig = cache_rig(make_rig)
    fill(rig)
    origin_requests(rig)
    rig.client.data_received(get("/slow") + get() * 1000)
    assert rig.client_t.take() == b"", "the hits wait for the request before them"
    rig.origin_says(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nslow")
    out = rig.client_t.take()
    assert out.count(b"X-Cache: HIT") == 1000 and out.index(b"slow") < out.index(b"X-Cache")


def test_the_hit_is_in_the_json_access_log(make_rig, tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    rig = cache_rig(make_rig, {"access_log": {"path": str(log), "format": "json"}})
    fill(rig)
    rig.client.data_received(get())
    rig.client.data_received(get("/x", "Authorization: Basic eA=="))
    rig.origin_says(CACHEABLE)
    rig.server.access_log.flush()
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert [line["cache"] for line in lines] == ["miss", "hit", "bypass:authorization"]


def test_without_the_cache_section_nothing_is_cached(make_rig) -> None:
    rig = make_rig()
    assert rig.server.cache is None
    rig.client.data_received(get())
    rig.origin_says(CACHEABLE)
    rig.client.data_received(get())
    assert len(origin_requests(rig)) == 2
    assert rig.client.current is not None and rig.client.current.cache is None


# --- what is not shared ------------------------------------------------------------------------------


def test_a_response_that_sets_a_cookie_is_not_stored(make_rig) -> None:
    rig = cache_rig(make_rig)
    fill(rig, answer=response(60, b"mine!", "Set-Cookie: sid=secret"))
    origin_requests(rig)
    rig.client.data_received(get())
    assert origin_requests(rig) == [b"GET /page HTTP/1.1"], "the next request goes to the origin"


def test_a_session_cookie_bypasses_the_cache_and_other_cookies_do_not(make_rig) -> None:
    rig = cache_rig(make_rig)
    fill(rig)
    origin_requests(rig)
    rig.client.data_received(get("/page", "Cookie: _ga=1; theme=dark"))
    assert header(rig.client_t.take(), b"X-Cache") == b"HIT"
    rig.client.data_received(get("/page", "Cookie: theme=dark; sessionid=abc"))
    assert origin_requests(rig) == [b"GET /page HTTP/1.1"]


def test_each_variant_named_by_vary_is_fetched_and_served_on_its_own(make_rig) -> None:
    rig = cache_rig(make_rig)
    rig.client.data_received(get("/page", "Accept-Language: fr"))
    rig.origin_says(response(60, b"salut", "Vary: Accept-Language"))
    assert rig.client_t.take().endswith(b"salut")
    rig.client.data_received(get("/page", "Accept-Language: de"))
    assert origin_requests(rig) == [b"GET /page HTTP/1.1"] * 2, "another language: to the origin"
    rig.origin_says(response(60, b"hallo", "Vary: Accept-Language"))
    assert rig.client_t.take().endswith(b"hallo")
    for language, body in (("fr", b"salut"), ("de", b"hallo")):
        rig.client.data_received(get("/page", f"Accept-Language: {language}"))
        out = rig.client_t.take()
        assert out.endswith(body) and header(out, b"X-Cache") == b"HIT"
    assert origin_requests(rig) == []


# --- coalescing --------------------------------------------------------------------------------------


def test_identical_concurrent_misses_make_one_origin_request(make_rig) -> None:
    rig = cache_rig(make_rig)
    rig.client.data_received(get())
    waiting = [visitor(rig, number) for number in range(10, 30)]
    for _, conn in waiting:
        conn.data_received(get())
    assert origin_requests(rig) == [b"GET /page HTTP/1.1"], "one request reached the origin"
    assert rig.server.cache is not None and rig.server.cache.stats()["followers"] == 20
    rig.origin_says(CACHEABLE)
    assert rig.client_t.take().endswith(b"first")
    for transport, _ in waiting:
        out = transport.take()
        assert out.endswith(b"first") and header(out, b"X-Cache") == b"HIT"
        assert not transport.closed
    assert rig.server.cache.stats()["followers"] == 0


def test_a_head_request_follows_a_get_fetch(make_rig) -> None:
    rig = cache_rig(make_rig)
    rig.client.data_received(get())
    transport, conn = visitor(rig, 2)
    conn.data_received(get(method="HEAD"))
    rig.origin_says(CACHEABLE)
    out = transport.take()
    assert out.endswith(b"\r\n\r\n") and header(out, b"Content-Length") == b"5"
    assert len(origin_requests(rig)) == 1


def test_followers_wait_no_longer_than_coalesce_timeout(make_rig) -> None:
    rig = cache_rig(make_rig, coalesce_timeout=5.0)
    rig.client.data_received(get())
    transport, conn = visitor(rig, 2)
    conn.data_received(get())
    origin_requests(rig)
    rig.clock.advance(4.0)
    rig.server._sweep()
    assert origin_requests(rig) == [], "still waiting"
    rig.clock.advance(1.5)
    rig.server._sweep()
    assert origin_requests(rig) == [b"GET /page HTTP/1.1"], "it went to the origin on its own"
    rig.origin_says(response(60, b"other"))
    assert transport.take().endswith(b"other")
    assert rig.server.cache is not None and rig.server.cache.stats()["coalesce_timeouts"] == 1


def test_a_follower_whose_client_leaves_stops_waiting(make_rig) -> None:
    rig = cache_rig(make_rig)
    rig.client.data_received(get())
    transport, conn = visitor(rig, 2)
    conn.data_received(get())
    conn.connection_lost(None)
    assert rig.server.cache is not None and rig.server.cache.stats()["followers"] == 0
    rig.origin_says(CACHEABLE)
    assert transport.take() == b""


def test_when_the_leader_leaves_a_follower_leads_the_next_fetch(make_rig) -> None:
    rig = cache_rig(make_rig)
    rig.client.data_received(get())
    waiting = [visitor(rig, number) for number in (2, 3)]
    for _, conn in waiting:
        conn.data_received(get())
    origin_requests(rig)
    rig.client.connection_lost(None)
    assert origin_requests(rig) == [b"GET /page HTTP/1.1"], "one new fetch, not one per follower"
    rig.origin_says(CACHEABLE)
    assert all(transport.take().endswith(b"first") for transport, _ in waiting)


def test_followers_of_a_response_that_cannot_be_stored_go_to_the_origin(make_rig) -> None:
    rig = cache_rig(make_rig)
    rig.client.data_received(get())
    transport, conn = visitor(rig, 2)
    conn.data_received(get())
    origin_requests(rig)
    rig.origin_says(b"HTTP/1.1 200 OK\r\nCache-Control: private\r\nContent-Length: 4\r\n\r\nmine")
    assert origin_requests(rig) == [b"GET /page HTTP/1.1"]
    rig.origin_says(b"HTTP/1.1 200 OK\r\nCache-Control: private\r\nContent-Length: 5\r\n\r\nyours")
    assert transport.take().endswith(b"yours")


def test_a_slow_reading_leader_does_not_hold_the_followers_up(make_rig) -> None:
    rig = cache_rig(make_rig, max_object_bytes=8192)
    rig.client.data_received(get())
    transport, conn = visitor(rig, 2)
    conn.data_received(get())
    rig.client.pause_writing()  # the leader's client takes nothing more
    head = b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nContent-Length: 6000\r\n\r\n"
    rig.origin_says(head + b"a" * 3000)
    assert rig.up.reading, "the fill reads on"
    rig.origin_says(b"b" * 3000)
    assert transport.take().endswith(b"a" * 3000 + b"b" * 3000), "the follower has its answer"


def test_past_max_object_bytes_a_slow_reader_sets_the_pace_again(make_rig) -> None:
    rig = cache_rig(make_rig, max_object_bytes=4096)
    rig.client.data_received(get())
    rig.client.pause_writing()
    head = b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nTransfer-Encoding: chunked\r\n\r\n"
    rig.origin_says(head + b"800\r\n" + b"c" * 2048 + b"\r\n")
    assert rig.up.reading
    rig.origin_says(b"1000\r\n" + b"d" * 4096 + b"\r\n")
    assert not rig.up.reading, "no fill any more: back-pressure as usual"


# --- size bounds -------------------------------------------------------------------------------------


def test_a_body_over_max_object_bytes_is_streamed_but_not_stored(make_rig) -> None:
    rig = cache_rig(make_rig, max_object_bytes=4096)
    big = b"x" * 10_000
    rig.client.data_received(get())
    rig.origin_says(response(60, big))
    assert rig.client_t.take().endswith(big)
    rig.client.data_received(get())
    assert len(origin_requests(rig)) == 2
    assert rig.server.cache is not None and rig.server.cache.stats()["too_big"] == 1


def test_a_chunked_body_growing_over_the_limit_lets_the_followers_go_at_once(make_rig) -> None:
    rig = cache_rig(make_rig, max_object_bytes=4096)
    rig.client.data_received(get())
    transport, conn = visitor(rig, 2)
    conn.data_received(get())
    origin_requests(rig)
    head = b"HTTP/1.1 200 OK\r\nCache-Control: max-age=60\r\nTransfer-Encoding: chunked\r\n\r\n"
    rig.origin_says(head + b"1000\r\n" + b"y" * 4096 + b"\r\n", index=0)
    assert origin_requests(rig) == [b"GET /page HTTP/1.1"], "the follower did not wait for the rest"
    rig.origin_says(b"0\r\n\r\n", index=0)
    assert rig.client_t.take().endswith(b"0\r\n\r\n"), "the leader got its whole body"
    rig.origin_says(response(60, b"small"), index=1)
    assert transport.take().endswith(b"small")


def test_the_cache_stays_within_max_bytes(make_rig) -> None:
    rig = cache_rig(make_rig, max_bytes=20_000, max_object_bytes=4096)
    for number in range(20):
        rig.client.data_received(get(f"/p{number}"))
        rig.origin_says(response(60, b"z" * 3000))
        rig.client_t.take()
    assert rig.server.cache is not None
    stats = rig.server.cache.stats()
    assert stats["bytes_stored"] <= 20_000 and stats["evictions"] > 0


# --- stale copies ------------------------------------------------------------------------------------


def stale_copy(
    make_rig: Callable[..., Rig], extra: dict[str, object] | None = None, **settings: object
) -> Rig:
    """A rig holding /page fresh for 1 s, now 2 s old (stale, within the default stale-if-error)."""
    rig = cache_rig(make_rig, extra, **settings)
    fill(rig, answer=response(1, b"stale"))
    rig.clock.advance(2.0)
    origin_requests(rig)
    return rig


def test_an_origin_error_is_answered_with_the_stale_copy_for_everyone_waiting(make_rig) -> None:
    rig = stale_copy(make_rig)
    rig.client.data_received(get())
    transport, conn = visitor(rig, 2)
    conn.data_received(get())
    assert origin_requests(rig) == [b"GET /page HTTP/1.1"]
    rig.origin_says(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 4\r\n\r\ngone")
    for out in (rig.client_t.take(), transport.take()):
        assert out.endswith(b"stale") and header(out, b"X-Cache") == b"STALE"
        assert header(out, b"Age") == b"2"
    assert rig.server.pool.busy == set() and rig.up.closed, "the origin's error response was dropped"
    rig.client.data_received(get())
    assert origin_requests(rig) == [b"GET /page HTTP/1.1"], "the next request tries the origin again"


def test_an_origin_timeout_is_answered_with_the_stale_copy(make_rig) -> None:
    rig = stale_copy(make_rig, {"upstream": {"read_timeout": 1.0}})
    rig.client.data_received(get())
    rig.clock.advance(1.5)
    rig.server._sweep()
    out = rig.client_t.take()
    assert out.startswith(b"HTTP/1.1 200 ") and header(out, b"X-Cache") == b"STALE"
    assert not rig.client_t.closed


def test_without_a_stale_copy_the_followers_get_the_origin_error(make_rig) -> None:
    rig = cache_rig(make_rig)
    rig.client.data_received(get())
    transport, conn = visitor(rig, 2)
    conn.data_received(get())
    rig.origin_says(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy")
    assert rig.client_t.take().endswith(b"busy"), "the leader gets the origin's own answer"
    assert transport.take().startswith(b"HTTP/1.1 503 ")
    assert len(origin_requests(rig)) == 1, "the follower did not try the failing origin again"


def test_past_stale_if_error_the_origin_error_goes_through(make_rig) -> None:
    rig = stale_copy(make_rig, stale_if_error=1.0)
    rig.client.data_received(get())
    rig.origin_says(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 4\r\n\r\ngone")
    assert rig.client_t.take().endswith(b"gone")


def test_a_saturated_origin_makes_stale_copies_stand_in(make_rig) -> None:
    rig = stale_copy(make_rig, {"admission": {"enabled": True, "fixed_limit": 1}})
    visitor(rig, 2)[1].data_received(get("/busy"))
    visitor(rig, 3)[1].data_received(get("/queued"))
    door = rig.server.door
    assert door is not None and door.controller.queued == 1
    transport, conn = visitor(rig, 4)
    conn.data_received(get())
    out = transport.take()
    assert out.endswith(b"stale") and header(out, b"X-Cache") == b"STALE"
    assert door.controller.queued == 1, "it did not queue for the origin"


def test_a_request_shed_from_the_admission_queue_gets_the_stale_copy(make_rig) -> None:
    admission = {"enabled": True, "fixed_limit": 1, "queue_timeout": {"normal": 2.0}}
    rig = stale_copy(make_rig, {"admission": admission})
    visitor(rig, 2)[1].data_received(get("/busy"))
    rig.client.data_received(get())
    assert rig.client_t.take() == b"", "it waits in the queue for the origin"
    rig.clock.advance(2.5)
    rig.server._sweep()
    out = rig.client_t.take()
    assert out.startswith(b"HTTP/1.1 200 ") and header(out, b"X-Cache") == b"STALE", "not a 503"
    assert rig.server.door is not None and rig.server.door.controller.queued == 0


def test_followers_of_a_shed_request_queue_in_their_own_right(make_rig) -> None:
    admission = {"enabled": True, "fixed_limit": 1, "queue_timeout": {"normal": 2.0}}
    rig = cache_rig(make_rig, {"admission": admission})
    visitor(rig, 2)[1].data_received(get("/busy"))
    rig.client.data_received(get())
    rig.clock.advance(1.0)
    transport, conn = visitor(rig, 3)
    conn.data_received(get())
    rig.clock.advance(1.5)
    rig.server._sweep()
    assert rig.client_t.take().startswith(b"HTTP/1.1 503 "), "the leader waited too long"
    assert transport.take() == b"", "its follower was not answered with the leader's 503"
    assert rig.server.door is not None and rig.server.door.controller.queued == 1, "it queues itself"


def test_a_stale_copy_within_stale_while_revalidate_is_served_while_one_request_refreshes(make_rig) -> None:
    rig = stale_copy(make_rig, stale_while_revalidate=30.0)
    rig.client.data_received(get())
    assert origin_requests(rig) == [b"GET /page HTTP/1.1"], "the first request refreshes"
    transport, conn = visitor(rig, 2)
    conn.data_received(get())
    out = transport.take()
    assert out.endswith(b"stale") and header(out, b"X-Cache") == b"STALE", "others get the copy at once"
    rig.origin_says(response(60, b"fresh"))
    assert rig.client_t.take().endswith(b"fresh")
    conn.data_received(get())
    assert transport.take().endswith(b"fresh")


# --- configuration -----------------------------------------------------------------------------------


def test_the_defaults_are_the_cache_packages_own() -> None:
    assert cache_config(CacheSettings()) == CacheConfig()


@pytest.mark.parametrize(
    ("cache", "message"),
    [
        (
            {"max_bytes": 1000, "max_object_bytes": 2000},
            "cache: max_object_bytes (2000) is larger than max_bytes (1000); "
            "lower max_object_bytes or raise max_bytes",
        ),
        ({"path_prefixes": []}, 'cache: path_prefixes is empty, so nothing would be cached; list e.g. ["/"]'),
        (
            {"key_cookies": ["SessionID"]},
            "cache: sessionid is both a session cookie and a key cookie; "
            "a session cookie already bypasses the cache, remove it from key_cookies",
        ),
        ({"path_prefixes": ["news"]}, "cache.path_prefixes[0]: a path prefix starts with '/'"),
        ({"coalesce_timeout": 0}, "cache.coalesce_timeout: must be greater than 0 (got 0)"),
        ({"stale_if_error": -1}, "cache.stale_if_error: must be at least 0 (got -1)"),
    ],
)
def test_bad_cache_settings_say_what_to_do(cache: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"cache": cache})
    [problem] = caught.value.problems
    assert problem.startswith(message)
