"""Listeners end to end: TLS with SNI, PROXY protocol v1/v2 (also before TLS), IPv6, caps at accept, 429."""

from __future__ import annotations

import socket
import ssl
import struct
from collections.abc import Iterator

import pytest
import trustme

from helpers import procs
from helpers.rawhttp import Connection, build_request

pytestmark = pytest.mark.integration

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def certificates(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, str]]:
    out = []
    folder = tmp_path_factory.mktemp("certs")
    for name in ("shield.test", "other.test"):
        leaf = ca.issue_cert(name)
        cert, key = folder / f"{name}.pem", folder / f"{name}.key"
        cert.write_bytes(b"".join(blob.bytes() for blob in leaf.cert_chain_pems))
        key.write_bytes(leaf.private_key_pem.bytes())
        out.append({"cert": str(cert), "key": str(key)})
    return out


def client_tls(ca: trustme.CA) -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ca.configure_trust(ctx)
    ctx.set_alpn_protocols(["http/1.1"])
    return ctx


def echo(conn: Connection) -> dict[str, str]:
    response = conn.request("GET", "/echo", host="shield.test")
    assert response.status == 200
    return {name.lower(): value for name, value in response.json()["headers"]}


def proxy_v2(src: str, dst: str, sport: int, dport: int) -> bytes:
    addresses = socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack("!HH", sport, dport)
    return V2_SIGNATURE + bytes([0x21, 0x11]) + struct.pack("!H", len(addresses)) + addresses


@pytest.fixture
def tls_shield(start_shield, certificates: list[dict[str, str]]) -> procs.ServerProcess:
    port = procs.free_port()
    return start_shield({"listeners": [{"address": f"127.0.0.1:{port}", "certificates": certificates}]})


@pytest.mark.parametrize("name", ["shield.test", "other.test"])
def test_tls_terminates_with_the_certificate_sni_asks_for(
    tls_shield: procs.ServerProcess, ca: trustme.CA, name: str
) -> None:
    raw = socket.create_connection(tls_shield.address, timeout=5)
    tls = client_tls(ca).wrap_socket(raw, server_hostname=name)  # verifies the chain and the name
    assert tls.selected_alpn_protocol() == "http/1.1"
    with Connection.over(tls) as conn:
        headers = echo(conn)
    assert headers["x-forwarded-proto"] == "https" and "proto=https" in headers["forwarded"]


def test_a_tls_client_that_never_says_hello_is_dropped_at_the_handshake_deadline(
    start_shield, certificates: list[dict[str, str]]
) -> None:
    port = procs.free_port()
    shield = start_shield(
        {
            "listeners": [{"address": f"127.0.0.1:{port}", "certificates": certificates}],
            "limits": {"tls_handshake_timeout": 1.0},
        }
    )
    with Connection(shield.address) as conn:  # TCP only: no ClientHello ever comes
        assert conn.peer_closed(within=4)


def test_proxy_protocol_v1_gives_the_client_address(start_shield) -> None:
    port = procs.free_port()
    shield = start_shield({"listeners": [{"address": f"127.0.0.1:{port}", "proxy_protocol": True}]})
    with Connection(shield.address) as conn:
        conn.send(b"PROXY TCP4 198.51.100.9 127.0.0.1 51000 443\r\n")
        assert echo(conn)["x-forwarded-for"] == "198.51.100.9"


def test_proxy_protocol_v2_then_tls(start_shield, certificates: list[dict[str, str]], ca: trustme.CA) -> None:
    port = procs.free_port()
    listener = {"address": f"127.0.0.1:{port}", "proxy_protocol": True, "certificates": certificates}
    shield = start_shield({"listeners": [listener]})
    raw = socket.create_connection(shield.address, timeout=5)
    raw.sendall(proxy_v2("203.0.113.50", "127.0.0.1", 40000, 443))
    tls = client_tls(ca).wrap_socket(raw, server_hostname="shield.test")
    with Connection.over(tls) as conn:
        headers = echo(conn)
    assert headers["x-forwarded-for"] == "203.0.113.50" and headers["x-forwarded-proto"] == "https"


def test_a_bad_proxy_header_is_dropped_without_forwarding(start_shield) -> None:
    port = procs.free_port()
    shield = start_shield({"listeners": [{"address": f"127.0.0.1:{port}", "proxy_protocol": True}]})
    with Connection(shield.address) as conn:
        conn.send(build_request("GET", "/echo"))  # no PROXY header: an attacker bypassing the balancer
        assert conn.peer_closed(within=3)


def ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


def test_ipv6_listener(start_shield) -> None:
    if not ipv6_loopback():
        pytest.fail("this machine has no IPv6 loopback (::1); the test needs one")
    port = procs.free_port("::1")
    shield = start_shield({"listeners": [{"address": f"[::1]:{port}"}]})
    with Connection(shield.address) as conn:
        assert echo(conn)["x-forwarded-for"] == "::1"


@pytest.fixture
def capped_shield(start_shield) -> procs.ServerProcess:
    return start_shield({"limits": {"max_connections_per_ip": 2, "max_connections_per_prefix": 4}})


def connect_from(source: str, shield: procs.ServerProcess) -> socket.socket:
    sock = socket.socket()
    sock.settimeout(3)
    sock.bind((source, 0))
    sock.connect(shield.address)
    return sock


def test_connections_over_the_per_ip_cap_are_refused_at_accept(capped_shield: procs.ServerProcess) -> None:
    held: list[socket.socket] = []
    try:
        held += [connect_from("127.0.0.1", capped_shield) for _ in range(2)]
        for sock in held:  # the two admitted connections are served
            sock.sendall(build_request("GET", "/hello"))
            assert sock.recv(1024).startswith(b"HTTP/1.1 200")
        third = connect_from("127.0.0.1", capped_shield)
        held.append(third)
        third.sendall(build_request("GET", "/hello"))
        assert Connection.over(third).peer_closed(within=3), "aborted before any byte is parsed"
        other = connect_from("127.0.0.2", capped_shield)  # another address in the same /24 is still let in
        held.append(other)
        other.sendall(build_request("GET", "/hello"))
        assert other.recv(1024).startswith(b"HTTP/1.1 200")
    finally:
        for sock in held:
            sock.close()


@pytest.fixture
def limited_shield(start_shield) -> Iterator[procs.ServerProcess]:
    yield start_shield({"limits": {"requests_per_second_per_ip": 0.5, "requests_burst_per_ip": 2}})


def test_rate_guard_answers_429_with_retry_after(limited_shield: procs.ServerProcess) -> None:
    with Connection(limited_shield.address) as conn:
        statuses = [conn.request("GET", "/hello").status for _ in range(2)]
        refused = conn.request("GET", "/hello")
    assert statuses == [200, 200]
    assert refused.status == 429 and refused.header("Retry-After") == "2"
    assert (refused.header("X-Shieldwall-Ref") or "").startswith("SW-")
