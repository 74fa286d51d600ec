"""Pure-Python cost of one proxied keep-alive request, one 429, or one connection, without sockets.

Drives the real ClientConnection and UpstreamConnection through recording transports, a browser-like
request and an nginx-like response, and prints the best of 5 loops. `close` is `make bench`'s new
connection per request: a connection made, one `Connection: close` request proxied, the connection
lost. This is the part of `make bench`'s CPU per request that shieldwall's own code decides; use it
to compare two versions of the hot path.
`--profile` prints where the time goes instead (cProfile, top 30 by own time).

    .venv/bin/python -m benchmarks.python_path [--scenario proxied|reject|close] [--requests 50000]
                                               [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import tempfile
import time
from collections.abc import Callable

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
# As `make bench`'s 429 row: one client over its per-IP rate, bans off; a rate of one in 1000 s refuses
# every request the loop sends (at 1/s, one a second would reach the origin and stall the pipeline).
CLOSE_REQUEST = REQUEST.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
WHAT = {
    "proxied": "proxied keep-alive request",
    "reject": "429 on a keep-alive connection",
    "close": "connection with one proxied request (Connection: close)",
}
REJECT = {
    "limits": {"requests_per_second_per_ip": 0.001, "requests_burst_per_ip": 1},
    "bans": {"enabled": False},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", choices=tuple(WHAT), default="proxied")
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--profile", action="store_true", help="profile one loop instead of timing five")
    args = parser.parse_args()
    loop = asyncio.new_event_loop()
    state = tempfile.TemporaryDirectory(prefix="shieldwall-bench-")
    config: dict[str, object] = {
        "access_log": {"path": "off"},
        "server": {"state_dir": state.name},
        **(REJECT if args.scenario == "reject" else {}),
    }
    limits = dict(config.get("limits", {}))  # type: ignore[call-overload]
    config["limits"] = {**limits, "max_requests_per_connection": 10**9}
    server = ShieldServer(parse_config(config), loop=loop, clock=SystemClock())
    client_t, origin_t = FakeTransport(), FakeTransport(("127.0.0.1", 8000))
    origin = UpstreamConnection(server.pool)
    origin.connection_made(origin_t)  # type: ignore[arg-type]
    server.pool.idle.append(origin)  # one warm pooled connection, as under keep-alive load
    client = ClientConnection(server, ListenerRuntime(server.settings.listeners[0], None, b"http"))
    client.connection_made(client_t)  # type: ignore[arg-type]

    def proxied() -> None:
        client.data_received(REQUEST)
        origin.data_received(RESPONSE)
        client_t.written.clear()
        origin_t.written.clear()

    def refused() -> None:
        client.data_received(REQUEST)
        client_t.written.clear()

    listener = client.listener

    def connection() -> None:
        fresh = ClientConnection(server, listener)
        transport = FakeTransport()
        fresh.connection_made(transport)  # type: ignore[arg-type]
        fresh.data_received(CLOSE_REQUEST)
        origin.data_received(RESPONSE)
        fresh.connection_lost(None)
        origin_t.written.clear()

    one: Callable[[], None] = {"proxied": proxied, "reject": refused, "close": connection}[args.scenario]
    proxied()  # the first request is within the rate (the burst) in either scenario
    assert server.pool.idle == [origin], "the exchange did not complete"
    client.data_received(REQUEST)
    if args.scenario == "reject":
        assert b" 429 " in client_t.written, "the request was not refused"
        client_t.written.clear()
    else:
        origin.data_received(RESPONSE)
    if args.profile:
        profiler = cProfile.Profile()

        def loop_of_requests() -> None:
            for _ in range(args.requests):
                one()

        profiler.runcall(loop_of_requests)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    else:
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(args.requests):
                one()
            best = min(best, (time.perf_counter() - start) / args.requests)
        assert client.transport is not None and not client.transport.is_closing(), "the connection closed"
        took = f"{best * 1e6:.2f} µs (best of 5 x {args.requests})"
        print(f"pure-Python path per {WHAT[args.scenario]}: {took}")
    loop.close()
    state.cleanup()


if __name__ == "__main__":
    main()
