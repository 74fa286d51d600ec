"""The floor of the stack: a reverse proxy on uvloop + httptools with no features at all.

`make bench` runs it beside nginx and shieldwall so that every scenario shows, in the same run, what
the stack shieldwall is built on costs by itself: the issue's "bare uvloop+httptools Python proxy".
It parses the request with httptools, rebuilds the head (method, target, the client's fields, one
X-Forwarded-For), sends it over a pooled keep-alive connection to the origin, and relays the
response. No validation, no guards, no deadlines, no telemetry, no logging: never a product, only a
yardstick. With `--limit-rps`, a client over one token bucket per IP (burst 1) gets a prebuilt 429
instead, keeping the connection, as nginx's `limit_req` does.

Only what the benchmark's origin sends is handled (a Content-Length response, no pipelining, no
bodies upstream): it is not a general proxy. It imports nothing from shieldwall, so that its figure
is the stack's alone.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections import deque

import httptools
import uvloop

TOO_MANY = (
    b"HTTP/1.1 429 Too Many Requests\r\nContent-Type: text/plain\r\nContent-Length: 18\r\n\r\n"
    b"too many requests\n"
)
HOP_BY_HOP = frozenset({b"connection", b"keep-alive", b"transfer-encoding", b"upgrade", b"te", b"trailer"})


class Origin:
    """A pool of idle keep-alive connections to the origin."""

    def __init__(self, loop: asyncio.AbstractEventLoop, port: int) -> None:
        self.loop, self.port = loop, port
        self.idle: deque[OriginConnection] = deque()

    def send(self, client: Client, head: bytes) -> None:
        if self.idle:
            self.idle.pop().start(client, head)
            return
        connection = OriginConnection(self)
        task = self.loop.create_task(self.loop.create_connection(lambda: connection, "127.0.0.1", self.port))
        task.add_done_callback(lambda _t: connection.start(client, head))


class OriginConnection(asyncio.Protocol):
    def __init__(self, origin: Origin) -> None:
        self.origin = origin
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.client: Client | None = None
        self.head: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def start(self, client: Client, head: bytes) -> None:
        self.client = client
        assert self.transport is not None
        self.transport.write(head)

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_begin(self) -> None:
        self.head = []

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() not in HOP_BY_HOP:
            self.head += (name, b": ", value, b"\r\n")

    def on_headers_complete(self) -> None:
        assert self.client is not None
        status = self.parser.get_status_code()
        keep = b"keep-alive" if self.client.keep_alive else b"close"
        line = b"HTTP/1.1 %d \r\n" % status  # an empty reason phrase is valid (RFC 9112 section 4)
        self.client.buffer = [line, *self.head, b"Connection: ", keep, b"\r\n\r\n"]

    def on_body(self, body: bytes) -> None:
        assert self.client is not None
        self.client.buffer.append(body)

    def on_message_complete(self) -> None:
        client, self.client = self.client, None
        self.origin.idle.append(self)
        assert client is not None
        client.respond()


class Client(asyncio.Protocol):
    def __init__(self, origin: Origin, limit_rps: float, buckets: dict[str, float]) -> None:
        self.origin, self.limit_rps, self.buckets = origin, limit_rps, buckets
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.ip = ""
        self.url = b""
        self.headers: list[bytes] = []
        self.keep_alive = True
        self.buffer: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.ip = transport.get_extra_info("peername")[0]

    def data_received(self, data: bytes) -> None:
        self.parser.feed_data(data)

    def on_message_begin(self) -> None:
        self.url, self.headers = b"", []

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if name.lower() not in HOP_BY_HOP:
            self.headers += (name, b": ", value, b"\r\n")

    def on_headers_complete(self) -> None:
        self.keep_alive = self.parser.should_keep_alive()
        if self.limit_rps and self._over_limit():
            assert self.transport is not None
            self.transport.write(TOO_MANY)
            return
        method = self.parser.get_method()
        head = [method, b" ", self.url, b" HTTP/1.1\r\n", *self.headers, b"X-Forwarded-For: "]
        head += (self.ip.encode(), b"\r\nConnection: keep-alive\r\n\r\n")
        self.origin.send(self, b"".join(head))

    def _over_limit(self) -> bool:
        """One token bucket per IP, burst 1: the next request is allowed at `allowed_at`."""
        now = time.monotonic()
        allowed_at = self.buckets.get(self.ip, 0.0)
        if now < allowed_at:
            return True
        self.buckets[self.ip] = now + 1.0 / self.limit_rps
        return False

    def respond(self) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        self.transport.write(b"".join(self.buffer))
        self.buffer = []
        if not self.keep_alive:
            self.transport.close()


async def serve(listen: int, upstream: int, limit_rps: float) -> None:
    loop = asyncio.get_running_loop()
    origin = Origin(loop, upstream)
    buckets: dict[str, float] = {}
    server = await loop.create_server(lambda: Client(origin, limit_rps, buckets), "127.0.0.1", listen)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.bare_proxy", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--listen", type=int, required=True, help="port on 127.0.0.1")
    parser.add_argument("--upstream", type=int, required=True, help="the origin's port on 127.0.0.1")
    parser.add_argument("--limit-rps", type=float, default=0.0, help="answer 429 over this rate per IP")
    args = parser.parse_args()
    uvloop.run(serve(args.listen, args.upstream, args.limit_rps))


if __name__ == "__main__":
    main()
