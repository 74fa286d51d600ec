"""End-to-end HTTP behaviour through the real proxy, in front of the real demo origin.

Behaviour a proxy must preserve runs twice (`via` = origin, then shield): the direct run proves the
test and the origin right, so a failure through the shield is the shield's."""

from __future__ import annotations

import hashlib
import re
import time

import pytest

from helpers import procs
from helpers.backends import DroppingBackend
from helpers.rawhttp import Connection, build_request, chunk, get
from shieldwall.drill.processes import status_kib

pytestmark = pytest.mark.integration

LIMITS = {
    "max_request_line": 4096,
    "max_header_bytes": 16384,
    "max_header_count": 50,
    "max_body_bytes": 1_000_000,
}
REFERENCE_ID = re.compile(r"SW-[0-9A-Z]{10}")
# RFC 6455 section 1.3's own example, so the test does not re-derive the accept value.
WS_KEY, WS_ACCEPT = "dGhlIHNhbXBsZSBub25jZQ==", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.fixture(scope="module")
def shield(start_module_shield) -> procs.ServerProcess:
    return start_module_shield({"limits": LIMITS})


@pytest.fixture(params=["origin", "shield"])
def via(request: pytest.FixtureRequest, origin: procs.ServerProcess) -> tuple[str, int]:
    if request.param == "origin":
        return origin.address
    return request.getfixturevalue("shield").address


# -- connection management ---------------------------------------------------------------------------


def test_keep_alive_http11(via):
    with Connection(via) as conn:
        for _ in range(3):
            response = conn.request("GET", "/hello")
            assert (response.status, response.body) == (200, b"hello")
            assert response.header("x-origin-pid")
        assert not conn.peer_closed(within=0.3)


def test_keep_alive_http10_as_ab_sends_it(via):
    """`ab -k` speaks HTTP/1.0 and keeps the connection only if the response says keep-alive."""
    request = build_request(
        "GET",
        "/hello",
        version="HTTP/1.0",
        headers=[("Connection", "Keep-Alive"), ("User-Agent", "ApacheBench/2.3"), ("Accept", "*/*")],
    )
    with Connection(via) as conn:
        for _ in range(2):
            conn.send(request)
            response = conn.read_final()
            assert (response.status, response.body) == (200, b"hello")
            assert response.header("content-length") == "5"
            assert "keep-alive" in (response.header("connection") or "").lower()
        assert not conn.peer_closed(within=0.3)


def test_connection_close_is_honoured(via):
    with Connection(via) as conn:
        response = conn.request("GET", "/hello", headers=[("Connection", "close")])
        assert response.status == 200
        assert conn.peer_closed(within=2.0)


def test_pipelined_requests_answered_in_order(via):
    """The slow first answer must not be overtaken by the quick ones behind it."""
    with Connection(via) as conn:
        conn.send(
            build_request("GET", "/slow?ms=300")
            + build_request("GET", "/echo?n=2")
            + build_request("GET", "/hello")
        )
        first, second, third = (conn.read_final() for _ in range(3))
    assert first.body == b"slept 300 ms\n"
    assert second.json()["target"] == "/echo?n=2"
    assert third.body == b"hello"


def test_expect_100_continue(via):
    body = b"hello world"
    with Connection(via) as conn:
        conn.send(
            build_request(
                "POST", "/echo", headers=[("Expect", "100-continue"), ("Content-Length", str(len(body)))]
            )
        )
        interim = conn.read_response()
        assert interim.status == 100
        conn.send(body)
        final = conn.read_final()
    assert final.status == 200
    assert final.json()["body_len"] == len(body)


def test_head_has_length_but_no_body(via):
    with Connection(via) as conn:
        head = conn.request("HEAD", "/bytes?n=12345")
        assert head.status == 200
        assert head.header("content-length") == "12345"
        # a body byte after the HEAD response would corrupt the next response on this connection
        assert conn.request("GET", "/hello").body == b"hello"


# -- bodies --------------------------------------------------------------------------------------


def test_chunked_upload(via):
    pieces = [b"a" * 10, b"b" * 70000, b"c"]
    with Connection(via) as conn:
        conn.send(build_request("POST", "/sink", headers=[("Transfer-Encoding", "chunked")]))
        for piece in pieces:
            conn.send(chunk(piece))
        conn.send(b"0\r\n\r\n")
        result = conn.read_final().json()
    body = b"".join(pieces)
    assert result == {"body_len": len(body), "body_sha256": hashlib.sha256(body).hexdigest()}


def test_chunked_download(via):
    response = get(via, "/bytes?n=300000&chunked=1")
    assert response.status == 200
    assert response.body == b"x" * 300000


def test_trailers_forwarded(via):
    response = get(via, "/trailers", headers=[("TE", "trailers")])
    assert response.status == 200 and response.chunked
    trailers = dict((name.lower(), value) for name, value in response.trailers)
    assert trailers.get("x-checksum") == "sha256=" + hashlib.sha256(response.body).hexdigest()


def test_websocket_upgrade_is_tunnelled(via):
    upgrade = build_request(
        "GET",
        "/ws",
        headers=[
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", WS_KEY),
            ("Sec-WebSocket-Version", "13"),
        ],
    )
    with Connection(via) as conn:
        conn.send(upgrade)
        response = conn.read_response()
        assert response.status == 101
        assert response.header("sec-websocket-accept") == WS_ACCEPT
        payload = b"\x81\x05hello" + bytes(range(256)) * 40
        conn.send(payload)
        echoed = conn.buf
        conn.buf = b""
        while len(echoed) < len(payload):
            piece = conn.sock.recv(65536)
            assert piece, f"tunnel closed after {len(echoed)} of {len(payload)} bytes"
            echoed += piece
    assert echoed == payload


def test_200mb_streamed_both_ways_in_bounded_memory(start_shield):
    """A 200 MB upload and a 200 MB download pass through while the proxy's peak RSS stays small:
    bodies are streamed with back-pressure, never buffered whole."""
    size, piece = 200 * 1024 * 1024, b"y" * (1024 * 1024)
    shield = start_shield({"limits": {"max_body_bytes": 0}})
    digest = hashlib.sha256()
    with Connection(shield.address, timeout=30) as conn:
        conn.send(build_request("POST", "/sink", headers=[("Content-Length", str(size))]))
        for _ in range(size // len(piece)):
            conn.send(piece)
            digest.update(piece)
        upload = conn.read_final().json()
        conn.send(build_request("GET", f"/bytes?n={size}"))
        download = conn.read_final(keep_body=False)
    assert upload == {"body_len": size, "body_sha256": digest.hexdigest()}
    x_digest = hashlib.sha256()
    for _ in range(size // len(piece)):
        x_digest.update(b"x" * len(piece))
    assert download.status == 200 and download.body_len == size
    assert download.body_sha256 == x_digest.hexdigest()
    peaks = {pid: status_kib(pid, "VmHWM") for pid in shield.processes()}
    print(f"shield peak RSS (VmHWM) per process, KiB: {peaks}")
    assert max(peaks.values()) < 100 * 1024, f"peak RSS {peaks} KiB: a body was buffered"


# -- headers the proxy owns --------------------------------------------------------------------------


def test_hop_by_hop_headers_are_stripped(shield):
    response = get(
        shield.address,
        "/echo",
        headers=[
            ("Connection", "X-Private, keep-alive"),
            ("X-Private", "only for the first hop"),
            ("Keep-Alive", "timeout=5, max=100"),
            ("Proxy-Connection", "keep-alive"),
            ("X-Kept", "end-to-end"),
        ],
    )
    seen = {name.lower(): value for name, value in response.json()["headers"]}
    assert seen.get("x-kept") == "end-to-end"
    for name in ("x-private", "keep-alive", "proxy-connection"):
        assert name not in seen, f"hop-by-hop {name} reached the origin"
    assert "x-private" not in seen.get("connection", "").lower()


def _last_element(header: str) -> dict[str, str]:
    """The last forwarded-element of a Forwarded header as {param: value} (quotes removed)."""
    pairs = (pair.strip().partition("=") for pair in header.rsplit(",", 1)[-1].split(";"))
    return {name.lower(): value.strip('"') for name, _, value in pairs}


def test_forwarding_headers_reach_the_origin(shield):
    response = get(
        shield.address,
        "/echo",
        host="www.example.test",
        headers=[("X-Forwarded-For", "203.0.113.9")],  # spoofed: no proxy is trusted by default
    )
    seen = {name.lower(): value for name, value in response.json()["headers"]}
    assert seen["x-forwarded-for"].split(",")[-1].strip() == "127.0.0.1"
    assert seen["x-forwarded-proto"] == "http"
    assert seen["x-forwarded-host"] == "www.example.test"
    forwarded = _last_element(seen["forwarded"])
    assert forwarded.get("for") == "127.0.0.1"
    assert forwarded.get("proto") == "http"
    assert "1.1 shieldwall" in seen["via"]


# -- limits and errors -------------------------------------------------------------------------------


def test_request_line_too_long_is_414(shield):
    assert get(shield.address, "/" + "a" * 5000).status == 414


def test_header_section_too_large_is_431(shield):
    assert get(shield.address, "/", headers=[("X-Big", "b" * 20000)]).status == 431


def test_too_many_header_fields_is_431(shield):
    assert get(shield.address, "/", headers=[(f"X-H{i}", "v") for i in range(60)]).status == 431


def test_body_too_large_is_413_before_it_is_sent(shield):
    with Connection(shield.address) as conn:
        conn.send(build_request("POST", "/sink", headers=[("Content-Length", str(2_000_000))]))
        assert conn.read_final().status == 413


def test_origin_down_is_502_with_reference_id(start_shield):
    shield = start_shield(upstream=f"http://127.0.0.1:{procs.free_port()}")
    page = get(shield.address, "/", headers=[("Accept", "text/html")])
    assert page.status == 502
    assert (page.header("content-type") or "").startswith("text/html")
    assert REFERENCE_ID.search(page.body.decode())
    data = get(shield.address, "/", headers=[("Accept", "application/json")])
    assert data.status == 502
    assert (data.header("content-type") or "").startswith("application/json")
    assert REFERENCE_ID.search(str(data.json()))


def test_origin_too_slow_is_504(start_shield):
    shield = start_shield({"upstream": {"read_timeout": 1.0}})
    started = time.monotonic()
    response = get(shield.address, "/slow?ms=5000")
    elapsed = time.monotonic() - started
    assert response.status == 504
    assert 0.9 <= elapsed < 4.0, f"answered after {elapsed:.2f} s, read_timeout is 1 s"


def test_request_with_body_is_not_retried(start_shield):
    """The origin read the whole POST and hung up: sending it again could, say, charge twice."""
    backend = DroppingBackend()
    try:
        shield = start_shield({"upstream": {"retries": 5}}, upstream=backend.url)
        with Connection(shield.address) as conn:
            response = conn.request("POST", "/echo", body=b"payload")
        assert response.status == 502
        time.sleep(0.5)  # a retry, if any, would land within this
        assert len(backend.requests) == 1, f"origin got {len(backend.requests)} copies"
    finally:
        backend.close()
