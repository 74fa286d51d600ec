"""Pure-Python cost of one proxied keep-alive request, without sockets or the kernel.

Drives the real ClientConnection and UpstreamConnection through recording transports, a browser-like
request and an nginx-like response, and prints the best of 5 loops. This is the part of `make bench`'s
CPU per request that shieldwall's own code decides; use it to compare two versions of the hot path.

    .venv/bin/python -m benchmarks.python_path [--requests 50000]
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time

from tests.unit.fake_transport import FakeTransport

from shieldwall.config import parse_config
from shieldwall.core.clock import SystemClock
from shieldwall.dataplane.client import ClientConnection
from shieldwall.dataplane.server import ListenerRuntime, ShieldServer
from shieldwall.dataplane.upstream import UpstreamConnection

REQUEST = (
    b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: Mozilla/5.0\r\nAccept: */*\r\n"
    b"Accept-Language: en\r\nAccept-Encoding: gzip\r\n\r\n"
)
RESPONSE = (
    b"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Sun, 29 Nov 2026 09:00:00 GMT\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 5\r\nConnection: keep-alive\r\n\r\nhello"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50_000)
    args = parser.parse_args()
    loop = asyncio.new_event_loop()
    state = tempfile.TemporaryDirectory(prefix="shieldwall-bench-")
    settings = parse_config(
        {
            "access_log": {"path": "off"},
            "limits": {"max_requests_per_connection": 10**9},
            "server": {"state_dir": state.name},
        }
    )
    server = ShieldServer(settings, loop=loop, clock=SystemClock())
    client_t, origin_t = FakeTransport(), FakeTransport(("127.0.0.1", 8000))
    origin = UpstreamConnection(server.pool)
    origin.connection_made(origin_t)  # type: ignore[arg-type]
    server.pool.idle.append(origin)  # one warm pooled connection, as under keep-alive load
    client = ClientConnection(server, ListenerRuntime(settings.listeners[0], None, b"http"))
    client.connection_made(client_t)  # type: ignore[arg-type]

    def one() -> None:
        client.data_received(REQUEST)
        origin.data_received(RESPONSE)
        client_t.written.clear()
        origin_t.written.clear()

    one()
    assert server.pool.idle == [origin], "the exchange did not complete"
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(args.requests):
            one()
        best = min(best, (time.perf_counter() - start) / args.requests)
    assert client.current is None and client.requests == 5 * args.requests + 1
    print(
        f"pure-Python path per proxied keep-alive request: {best * 1e6:.2f} µs (best of 5 x {args.requests})"
    )
    loop.close()
    state.cleanup()


if __name__ == "__main__":
    main()
