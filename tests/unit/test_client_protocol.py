"""The client/upstream protocols driven byte by byte through fake transports and a FakeClock."""

from __future__ import annotations

import asyncio
import gc
import socket
import struct
from collections.abc import Callable

import pytest
from fake_transport import FakeTransport
from rig import Rig

from shieldwall.dataplane.client import ClientConnection
from shieldwall.dataplane.exchange import Exchange
from shieldwall.dataplane.upstream import UpstreamConnection

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def test_get_is_forwarded_with_rebuilt_head_and_answered(rig: Rig) -> None:
    rig.client.data_received(
        b"GET /a?b=1 HTTP/1.1\r\nHost: example.org\r\nConnection: keep-alive, X-Secret\r\n"
        b"X-Secret: 1\r\nKeep-Alive: timeout=5\r\nUser-Agent: t\r\n\r\n"
    )
    sent = rig.up.take()
    assert sent.startswith(b"GET /a?b=1 HTTP/1.1\r\nHost: example.org\r\nUser-Agent: t\r\n")
    for stripped in (b"X-Secret", b"Keep-Alive", b"Connection"):
        assert stripped not in sent
    assert b"X-Forwarded-For: 203.0.113.7\r\n" in sent
    assert b'Forwarded: for=203.0.113.7;proto=http;host="example.org"\r\n' in sent
    assert b"Via: 1.1 shieldwall\r\n" in sent
    rig.origin_says(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\nX-App: y\r\n\r\nok")
    out = rig.client_t.take()
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and out.endswith(b"\r\n\r\nok")
    assert b"X-App: y\r\n" in out and b"Via: 1.1 shieldwall\r\n" in out and b"Connection" not in out
    assert not rig.client_t.closed
    assert rig.server.pool.idle, "a cleanly finished upstream connection goes back to the pool"


def test_pipelined_requests_are_answered_in_order(rig: Rig) -> None:
    rig.client.data_received(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\nGET /2 HTTP/1.1\r\nHost: h\r\n\r\n")
    assert rig.up.take().startswith(b"GET /1 ")
    assert not rig.client_t.reading, "reads pause while a pipelined request waits"
    rig.origin_says(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n1")
    assert rig.up.take().startswith(b"GET /2 "), "the same pooled connection carries the next request"
    rig.origin_says(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n2")
    out = rig.client_t.take()
    assert out.index(b"\r\n\r\n1") < out.index(b"\r\n\r\n2")
    assert rig.client_t.reading


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
        ),
        (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,chunked\r\n\r\n0\r\n\r\n", 400),
        (b"GET http://evil/ HTTP/1.1\r\nHost: good\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nExpect: magic\r\n\r\n", 417),
        (b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", 405),
        (b"GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        (b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n", 400),
        (b"GET http://h/ HTTP/1.1\r\n\r\n", 400),
        (b"GET / HTTP/2.0\r\nHost: h\r\n\r\n", 505),
        (b"POST / HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ],
)
def test_ambiguous_requests_are_refused_and_never_forwarded(rig: Rig, raw: bytes, status: int) -> None:
    rig.client.data_received(raw)
    assert not rig.upstreams, "nothing reached the origin"
    out = rig.client_t.take()
    assert out.startswith(b"HTTP/1.1 %d " % status)
    assert b"X-Shieldwall-Ref: SW-" in out
    assert rig.client_t.closed


def test_bad_pipelined_request_is_answered_after_the_good_one(rig: Rig) -> None:
    rig.client.data_received(b"GET /ok HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\nHost: a b\r\n\r\n")
    assert rig.up.take().startswith(b"GET /ok ")
    assert rig.client_t.take() == b""
    rig.origin_says(OK)
    out = rig.client_t.take()
    assert out.startswith(b"HTTP/1.1 200 OK") and b"HTTP/1.1 400 Bad Request" in out
    assert rig.client_t.closed and len(rig.upstreams) == 1


def test_limits_give_414_431_413(make_rig: Callable[..., Rig]) -> None:
    r = make_rig({"limits": {"max_request_line": 64, "max_header_count": 3, "max_body_bytes": 10}})
    r.client.data_received(b"GET /" + b"a" * 100 + b" HTTP/1.1\r\nHost: h\r\n\r\n")
    assert r.client_t.take().startswith(b"HTTP/1.1 414 ")
    for raw, status in [
        (b"GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 431),
        (b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\n", 413),
        (
            b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\nabcdef\r\n",
            413,
        ),
    ]:
        t = FakeTransport()
        conn = r.connect(t)
        conn.data_received(raw)
        assert t.take().startswith(b"HTTP/1.1 %d " % status), raw
        assert t.closed


def test_chunked_request_is_rechunked_and_response_trailers_forwarded(rig: Rig) -> None:
    rig.client.data_received(
        b"POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"5;ext=1\r\nhello\r\n0\r\nX-Sum: 9\r\n\r\n"
    )
    sent = rig.up.take()
    assert sent.endswith(b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-Sum: 9\r\n\r\n")
    rig.origin_says(
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n"
        b"3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n"
    )
    out = rig.client_t.take()
    assert out.endswith(b"\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n")


def test_head_response_ends_without_body_and_connection_is_not_reused(rig: Rig) -> None:
    rig.client.data_received(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n")
    rig.origin_says(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n")
    out = rig.client_t.take()
    assert out.startswith(b"HTTP/1.1 200 OK") and b"Content-Length: 5000\r\n" in out
    assert out.endswith(b"\r\n\r\n"), "no body follows a HEAD response"
    assert rig.up.closed and not rig.server.pool.idle
    rig.client.data_received(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    assert len(rig.upstreams) == 2


def test_expect_100_continue_is_answered_when_the_origin_is_ready(rig: Rig) -> None:
    rig.client.data_received(
        b"PUT /x HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
    )
    assert rig.client_t.take() == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert b"Expect" not in rig.up.take()
    rig.client.data_received(b"abc")
    assert rig.up.take() == b"abc"


def test_close_delimited_origin_response_is_rechunked_for_http11(rig: Rig) -> None:
    rig.client.data_received(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    conn = next(iter(rig.server.pool.busy))
    conn.data_received(b"HTTP/1.0 200 OK\r\n\r\nsome body")
    conn.connection_lost(None)
    out = rig.client_t.take()
    assert b"Transfer-Encoding: chunked" in out and out.endswith(b"9\r\nsome body\r\n0\r\n\r\n")


def test_http10_keep_alive_as_ab_sends_it(rig: Rig) -> None:
    rig.client.data_received(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert b"Via: 1.0 shieldwall" in rig.up.take()
    rig.origin_says(OK)
    out = rig.client_t.take()
    assert b"Connection: keep-alive\r\n" in out and not rig.client_t.closed


def test_header_deadline_cuts_slowloris(rig: Rig) -> None:
    rig.client.data_received(b"GET / HTTP/1.1\r\nHost: h\r\nX-A: ")
    rig.clock.advance(9)
    rig.client.on_tick(rig.clock.monotonic())
    assert not rig.client_t.closed
    rig.clock.advance(2)
    rig.client.on_tick(rig.clock.monotonic())
    assert rig.client_t.closed and rig.client_t.take().startswith(b"HTTP/1.1 408 ")


def test_silent_connection_is_dropped_at_the_header_deadline(rig: Rig) -> None:
    rig.clock.advance(11)
    rig.client.on_tick(rig.clock.monotonic())
    assert rig.client_t.aborted


def test_slow_body_is_cut_but_a_steady_one_is_not(make_rig: Callable[..., Rig]) -> None:
    r = make_rig({"limits": {"min_body_rate": 100, "body_grace": 2}})
    r.client.data_received(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 100000\r\n\r\n")
    for _ in range(5):  # 150 B/s: fine
        r.clock.advance(1)
        r.client.data_received(b"x" * 150)
        r.client.on_tick(r.clock.monotonic())
    assert not r.client_t.closed
    for _ in range(10):  # then a trickle
        r.clock.advance(1)
        r.client.data_received(b"x")
        r.client.on_tick(r.clock.monotonic())
    assert r.client_t.closed
    assert r.up.closed, "the upstream connection that carried a partial body is not reused"


def test_slow_reader_is_dropped_after_send_timeout(rig: Rig) -> None:
    rig.client.data_received(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    rig.origin_says(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n" + b"x" * 1000)
    rig.client.pause_writing()
    assert not rig.up.reading, "the origin is not read while the client does not read"
    rig.clock.advance(31)
    rig.client.on_tick(rig.clock.monotonic())
    assert rig.client_t.aborted
    linger = rig.client_t.sock.options[(socket.SOL_SOCKET, socket.SO_LINGER)]
    assert linger == struct.pack("ii", 1, 0), "reset, so the kernel drops what the slow reader left unread"


def test_idle_keepalive_connection_is_closed(rig: Rig) -> None:
    rig.client.data_received(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    rig.origin_says(OK)
    rig.clock.advance(16)
    rig.client.on_tick(rig.clock.monotonic())
    assert rig.client_t.closed and not rig.client_t.aborted


def test_origin_too_slow_gives_504_and_json_when_asked(make_rig: Callable[..., Rig]) -> None:
    r = make_rig({"upstream": {"read_timeout": 2}})
    r.client.data_received(b"GET / HTTP/1.1\r\nHost: h\r\nAccept: application/json\r\n\r\n")
    r.clock.advance(3)
    r.server.pool.on_tick(r.clock.monotonic())
    out = r.client_t.take()
    assert out.startswith(b"HTTP/1.1 504 ") and b'"reference": "SW-' in out
    assert r.up.closed


def test_stale_pooled_connection_retries_idempotent_but_not_post(rig: Rig) -> None:
    rig.client.data_received(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    first = next(iter(rig.server.pool.busy))
    first.connection_lost(ConnectionResetError())
    assert len(rig.upstreams) == 2, "retried on a new connection"
    rig.origin_says(OK)
    assert rig.client_t.take().startswith(b"HTTP/1.1 200")

    rig.client.data_received(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx")
    conn = next(iter(rig.server.pool.busy))
    conn.connection_lost(ConnectionResetError())
    assert rig.client_t.take().startswith(b"HTTP/1.1 502 ")


def test_rate_guard_answers_429_with_retry_after_and_keeps_the_connection(
    make_rig: Callable[..., Rig],
) -> None:
    r = make_rig({"limits": {"requests_per_second_per_ip": 1, "requests_burst_per_ip": 1}})
    r.client.data_received(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    r.origin_says(OK)
    r.client_t.take()
    r.client.data_received(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    out = r.client_t.take()
    assert out.startswith(b"HTTP/1.1 429 ") and b"Retry-After: 1\r\n" in out
    assert not r.client_t.closed and len(r.upstreams) == 1
    r.clock.advance(1)
    r.client.data_received(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    r.origin_says(OK)
    assert r.client_t.take().startswith(b"HTTP/1.1 200")


def test_connection_cap_per_ip_refuses_at_accept(make_rig: Callable[..., Rig]) -> None:
    r = make_rig({"limits": {"max_connections_per_ip": 2}})
    second, third = FakeTransport(), FakeTransport()
    r.connect(second)
    r.connect(third)
    assert not second.aborted and third.aborted
    assert r.server.stats_refused == {"max_connections_per_ip": 1}
    r.client.connection_lost(None)
    fourth = FakeTransport()
    r.connect(fourth)
    assert not fourth.aborted


def test_websocket_upgrade_becomes_a_byte_tunnel(rig: Rig) -> None:
    rig.client.data_received(
        b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Key: x\r\nSec-WebSocket-Version: 13\r\n\r\nEARLY"
    )
    sent = rig.up.take()
    assert b"Connection: Upgrade\r\nUpgrade: websocket\r\n" in sent
    rig.origin_says(
        b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nHELLO"
    )
    out = rig.client_t.take()
    assert out.startswith(b"HTTP/1.1 101 ") and out.endswith(b"\r\n\r\nHELLO")
    assert rig.up.take() == b"EARLY"
    rig.client.data_received(b"\x81\x02hi")
    assert rig.up.take() == b"\x81\x02hi"
    rig.up.protocol.data_received(b"\x81\x02yo")
    assert rig.client_t.take() == b"\x81\x02yo"


def test_h2c_upgrade_is_not_tunnelled(rig: Rig) -> None:
    rig.client.data_received(
        b"GET / HTTP/1.1\r\nHost: h\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"
    )
    sent = rig.up.take()
    assert b"h2c" not in sent and b"HTTP2-Settings" not in sent
    rig.origin_says(OK)
    out = rig.client_t.take()
    assert out.startswith(b"HTTP/1.1 200") and rig.client_t.closed


def test_x_forwarded_for_is_replaced_from_an_untrusted_peer(rig: Rig) -> None:
    rig.client.data_received(b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n")
    sent = rig.up.take()
    assert b"X-Forwarded-For: 203.0.113.7\r\n" in sent and b"6.6.6.6" not in sent


def test_behind_a_trusted_proxy_the_visitor_is_the_forwarded_address(make_rig: Callable[..., Rig]) -> None:
    r = make_rig(
        {
            "client_identity": {"trusted_proxies": ["203.0.113.0/24"]},
            "limits": {
                "requests_per_second_per_ip": 1,
                "requests_burst_per_ip": 1,
                "max_connections_per_ip": 1,
            },
        }
    )
    second = FakeTransport()  # a trusted proxy's connections are not capped per IP
    r.connect(second)
    assert not second.aborted
    r.client.data_received(b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 198.51.100.1\r\n\r\n")
    sent = r.up.take()
    assert b"X-Forwarded-For: 198.51.100.1, 203.0.113.7\r\n" in sent
    assert b"Forwarded: for=198.51.100.1;" in sent
    r.origin_says(OK)
    r.client_t.take()
    # another visitor behind the same proxy has its own rate budget; the first one is over its own
    r.client.data_received(b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 198.51.100.2\r\n\r\n")
    r.origin_says(OK)
    assert r.client_t.take().startswith(b"HTTP/1.1 200")
    r.client.data_received(b"GET / HTTP/1.1\r\nHost: h\r\nX-Forwarded-For: 198.51.100.1\r\n\r\n")
    assert r.client_t.take().startswith(b"HTTP/1.1 429")


def test_request_trailers_that_frame_or_route_are_dropped(rig: Rig) -> None:
    rig.client.data_received(
        b"POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"1\r\nx\r\n0\r\nHost: evil\r\nAuthorization: x\r\nX-Checksum: 1\r\n\r\n"
    )
    assert rig.up.take().endswith(b"1\r\nx\r\n0\r\nX-Checksum: 1\r\n\r\n")


def test_content_length_in_request_trailers_is_refused(rig: Rig) -> None:
    rig.client.data_received(
        b"POST /u HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"1\r\nx\r\n0\r\nContent-Length: 5\r\n\r\n"
    )
    assert rig.client_t.take().startswith(b"HTTP/1.1 400 ")
    assert rig.up.closed, "the origin connection that saw a partial message is not reused"


def test_no_100_continue_for_http10(rig: Rig) -> None:
    rig.client.data_received(
        b"PUT /x HTTP/1.0\r\nHost: h\r\nContent-Length: 1\r\nExpect: 100-continue\r\n\r\n"
    )
    assert rig.client_t.take() == b""
    assert rig.up.take().startswith(b"PUT /x HTTP/1.1\r\n")


def test_origin_transfer_codings_other_than_chunked_give_502(rig: Rig) -> None:
    rig.client.data_received(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    rig.origin_says(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n")
    assert rig.client_t.take().startswith(b"HTTP/1.1 502 ")
    assert rig.up.closed


def test_drain_closes_idle_keepalive_but_serves_a_new_connection(rig: Rig) -> None:
    rig.client.data_received(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    rig.origin_says(OK)
    fresh_t = FakeTransport()
    fresh = rig.connect(fresh_t)
    drain = rig.loop.create_task(rig.server.drain(grace=5))
    rig.loop.run_until_complete(asyncio.sleep(0))
    assert rig.client_t.closed, "an idle keep-alive connection is closed at once"
    assert not fresh_t.closed, "a connection whose first request is on its way is not"
    fresh.data_received(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n")
    rig.origin_says(OK)
    out = fresh_t.take()
    assert out.startswith(b"HTTP/1.1 200") and b"Connection: close\r\n" in out
    fresh.connection_lost(None)
    rig.client.connection_lost(None)
    rig.loop.run_until_complete(drain)


@pytest.mark.parametrize(
    "field",
    [
        b"X: a\x00b",  # NUL
        b"X: a\x0bb",  # VT
        b"X: a\x7fb",  # DEL
        b"X: a\x01b",  # other CTL
        b"X(: y",  # "(" is not a token character
        b"X\x00: y",
        b"X Y: z",  # space inside a name
        b"X : y",  # whitespace before the colon
        b" X: y",  # obs-fold / leading whitespace
    ],
)
def test_llhttp_refuses_bad_field_bytes(rig: Rig, field: bytes) -> None:
    """shieldwall.http1 relies on llhttp for RFC 9110's token and field-value rules (it does not check
    them again per header, on the hot path); this pins that reliance to the httptools in use."""
    rig.client.data_received(b"GET / HTTP/1.1\r\nHost: h\r\n" + field + b"\r\n\r\n")
    assert rig.client_t.take().startswith(b"HTTP/1.1 400 ")
    assert not rig.upstreams


def test_requests_per_connection_are_capped(make_rig: Callable[..., Rig]) -> None:
    r = make_rig({"limits": {"max_requests_per_connection": 2}})
    r.client.data_received(b"GET /1 HTTP/1.1\r\nHost: h\r\n\r\n")
    r.origin_says(OK)
    assert b"Connection: close" not in r.client_t.take()
    r.client.data_received(b"GET /2 HTTP/1.1\r\nHost: h\r\n\r\n")
    r.origin_says(OK)
    assert b"Connection: close\r\n" in r.client_t.take()
    assert r.client_t.closed, "the connection ends after its last allowed request"


def test_requests_at_the_origin_per_client_are_capped(make_rig: Callable[..., Rig]) -> None:
    r = make_rig({"limits": {"max_inflight_per_ip": 1}})
    r.client.data_received(b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")  # at the origin, unanswered
    second_t = FakeTransport()  # same address, another connection
    second = r.connect(second_t)
    second.data_received(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
    out = second_t.take()
    assert out.startswith(b"HTTP/1.1 429 ") and b"Retry-After: 1\r\n" in out and not second_t.closed
    other_t = FakeTransport(("198.51.100.9", 1))  # another client is not affected
    r.connect(other_t).data_received(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
    assert other_t.take() == b"" and len(r.upstreams) == 2
    r.origin_says(OK, index=0)
    second.data_received(b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n")
    assert not second_t.take().startswith(b"HTTP/1.1 429"), "the slot was released with the answer"


def test_closed_connections_are_freed_by_reference_counting_alone(rig: Rig) -> None:
    """No reference cycle outlives connection_lost (the parser's callbacks and the last exchange point
    back at their connection): left to the cyclic GC, every closed connection was garbage to collect."""

    kinds = (ClientConnection, Exchange, UpstreamConnection)
    gc.collect()
    gc.disable()
    existing = {id(o) for o in gc.get_objects() if type(o) in kinds}  # the rig's own, other tests' leftovers

    def alive(kind: type) -> list[object]:
        return [o for o in gc.get_objects() if type(o) is kind and id(o) not in existing]

    try:
        conn = rig.connect(FakeTransport())
        conn.data_received(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n")
        rig.origin_says(OK)
        assert conn.transport is not None and conn.transport.is_closing()
        conn.connection_lost(None)
        del conn
        assert alive(ClientConnection) == [] and alive(Exchange) == []
        upstream = rig.server.pool.idle.pop()
        upstream.connection_lost(None)
        del upstream
        assert alive(UpstreamConnection) == []
    finally:
        gc.enable()
