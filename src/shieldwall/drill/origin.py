"""A small, fast HTTP/1.1 origin for tests, the demo and benchmarks.

It exists so that every test can see exactly what the shield forwarded (`/echo`), stress the shield's
flow control without holding payloads in memory (`/bytes`, `/sink`), and exercise its timeouts and
error pages (`/slow`, `/status`), tunnels (`/ws`) and cache (`/cacheable?max_age=N&id=X&ms=M`:
shareable for N seconds, answered after M ms, with a count of the requests for X that reached the
origin). One asyncio Protocol per connection feeds an httptools parser; parser callbacks only record the
request, and responses leave strictly in request order (pipelining), one at a time. Request bodies are
hashed as they arrive and never stored.

    python -m shieldwall.drill.origin --listen 127.0.0.1:0
prints `origin listening on 127.0.0.1:PORT` once ready and serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import os
import sys
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, cast
from urllib.parse import parse_qs, urlsplit

import httptools
import uvloop

from shieldwall.drill.serving import parse_listen, serve_until_stopped

_EMPTY_SHA256 = hashlib.sha256().hexdigest()
_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3
_MAX_PIECE = 1 << 20
_MAX_SLOW_MS = 600_000
_MAX_QUEUED = 64  # pipelined requests waiting for their turn before we stop reading
_YIELD_EVERY = 16  # pieces written between two yields to the loop, so one fast download never starves others
_HTML = (
    b"<!doctype html><html><head><meta charset='utf-8'><title>shieldwall demo origin</title></head>"
    b"<body><h1>Hello from the demo origin</h1><p>If you can read this, the shield let you in.</p>"
    b"</body></html>\n"
)
_TRAILER_PIECES = (b"trailers ", b"arrive ", b"after ", b"the body\n")
_PID_HEADER = b""
_MAX_CACHEABLE_IDS = 10_000
_cacheable_hits: dict[str, int] = {}  # /cacheable requests per id in this process


def _set_pid_header() -> None:
    """Built once per process (and again in a forked child), not once per response."""
    global _PID_HEADER  # noqa: PLW0603
    _PID_HEADER = f"X-Origin-Pid: {os.getpid()}\r\n".encode()


_set_pid_header()
os.register_at_fork(after_in_child=_set_pid_header)


@dataclass
class _Request:
    """One parsed request: what /echo reports. The body is only counted and hashed."""

    method: str = ""
    target: bytes = b""
    http_version: str = "1.1"
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    trailers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body_len: int = 0
    body_hash: Any = None  # a hashlib object, created at the first body byte
    keep_alive: bool = True
    upgrade: bool = False
    expect_continue: bool = False
    continue_sent: bool = False
    parse_error: str = ""

    def header(self, name: bytes) -> bytes | None:
        wanted = name.lower()
        for key, value in self.headers:
            if key.lower() == wanted:
                return value
        return None

    @property
    def body_sha256(self) -> str:
        return self.body_hash.hexdigest() if self.body_hash is not None else _EMPTY_SHA256

    @property
    def path_and_query(self) -> tuple[str, dict[str, list[str]]]:
        text = self.target.decode("latin-1")
        if not text.startswith("/"):  # absolute-form (a proxy may forward it as received)
            parts = urlsplit(text)
            text = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        path, _, query = text.partition("?")
        return path, parse_qs(query)


def _status_line(status: int) -> bytes:
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Status"
    return f"HTTP/1.1 {status} {phrase}\r\n".encode()


def _int_param(query: dict[str, list[str]], name: str, default: int, low: int, high: int) -> int:
    """A bounded integer query parameter; ValueError when it is not one."""
    values = query.get(name)
    if not values:
        return default
    value = int(values[0])
    if not low <= value <= high:
        raise ValueError(f"{name} must be within {low}..{high}")
    return value


class OriginProtocol(asyncio.Protocol):
    """One client connection. Responses are produced one at a time from `_queue`, in request order."""

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._current = _Request()
        self._in_body = False
        self._queue: deque[_Request] = deque()
        self._busy = False  # an asynchronous response (slow, streamed) is being written
        self._closing = False  # the last response carries Connection: close; ignore further input
        self._write_paused = False
        self._writable: asyncio.Future[None] | None = None
        self._read_paused = False
        self._tunnel = False  # /ws upgraded: every byte is echoed back raw
        self._tunnel_backlog = b""
        self._task: asyncio.Task[None] | None = None

    # -- transport callbacks --------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._queue.clear()
        if self._task is not None:
            self._task.cancel()
        self._wake_writer()

    def pause_writing(self) -> None:
        self._write_paused = True
        if self._tunnel:
            self._set_reading(False)

    def resume_writing(self) -> None:
        self._write_paused = False
        self._wake_writer()
        if self._tunnel:
            self._set_reading(True)

    def data_received(self, data: bytes) -> None:
        if self._tunnel:
            self._write(data)
            return
        if self._current.upgrade:  # the upgrade request waits in the queue; keep what follows it
            self._tunnel_backlog += data
            return
        if self._closing:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._tunnel_backlog = data[upgrade.args[0] :]
        except httptools.HttpParserError as exc:
            if not self._closing:
                self._closing = True
                self._queue.append(_Request(keep_alive=False, parse_error=str(exc)))
        self._pump()

    # -- parser callbacks: record only --------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._current = _Request()
        self._in_body = False

    def on_url(self, url: bytes) -> None:
        self._current.target += url

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._in_body:
            self._current.trailers.append((name, value))
        else:
            self._current.headers.append((name, value))

    def on_headers_complete(self) -> None:
        request = self._current
        self._in_body = True
        request.method = self._parser.get_method().decode("ascii")
        request.http_version = self._parser.get_http_version()
        request.keep_alive = self._parser.should_keep_alive()
        request.upgrade = self._parser.should_upgrade()
        if request.upgrade:  # only /ws switches protocols; any other route answers, then closes
            request.keep_alive = False
        expect = request.header(b"expect")
        request.expect_continue = expect is not None and expect.lower() == b"100-continue"
        if request.expect_continue and not self._busy and not self._queue:
            self._send_continue(request)

    def on_body(self, body: bytes) -> None:
        request = self._current
        if request.body_hash is None:
            request.body_hash = hashlib.sha256()
        request.body_hash.update(body)
        request.body_len += len(body)

    def on_message_complete(self) -> None:
        if self._closing:
            return
        request = self._current
        self._in_body = False
        if not request.keep_alive:
            self._closing = True
        self._queue.append(request)
        if len(self._queue) > _MAX_QUEUED:
            self._set_reading(False)

    # -- response scheduling -------------------------------------------------------------------------

    def _pump(self) -> None:
        """Answer queued requests in order until one needs to wait (slow, streamed, or closing)."""
        while self._queue and not self._busy and self._transport is not None:
            request = self._queue.popleft()
            if len(self._queue) <= _MAX_QUEUED // 2:
                self._set_reading(True)
            pending = self._respond(request)
            if pending is not None:
                self._busy = True
                self._task = self._loop.create_task(self._finish(pending))
                return
            if self._tunnel or self._transport.is_closing():
                return
        current = self._current
        if current.expect_continue and self._in_body and not current.continue_sent and not self._busy:
            self._send_continue(current)

    async def _finish(self, pending: Awaitable[None]) -> None:
        try:
            await pending
        finally:
            self._busy = False
            self._task = None
        self._pump()

    def _send_continue(self, request: _Request) -> None:
        request.continue_sent = True
        self._write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _respond(self, request: _Request) -> Awaitable[None] | None:
        """Write a complete response now and return None, or return the coroutine that will."""
        if request.parse_error:
            self._simple(request, 400, b"bad request: " + request.parse_error.encode() + b"\n")
            return None
        path, query = request.path_and_query
        route = _ROUTES.get(path)
        if route is None:
            self._simple(request, 404, b"not found\n")
            return None
        methods, handler = route
        if methods and request.method not in methods:
            allow = ", ".join(sorted(methods)).encode()
            self._simple(request, 405, b"method not allowed\n", [(b"Allow", allow)])
            return None
        try:
            return handler(self, request, query)
        except ValueError as exc:
            self._simple(request, 400, f"bad parameter: {exc}\n".encode())
            return None

    # -- writing -------------------------------------------------------------------------------------

    def _write(self, data: bytes | memoryview) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.write(data)

    def _head(
        self,
        request: _Request,
        status: int,
        headers: list[tuple[bytes, bytes]],
        length: int | None,
        bodyless: bool = False,
    ) -> bytes:
        """Status line and headers; `length` None means chunked (HTTP/1.1) or close-delimited (1.0);
        `bodyless` statuses (204, 304) carry neither."""
        lines = [_status_line(status), _PID_HEADER]
        lines += [name + b": " + value + b"\r\n" for name, value in headers]
        if bodyless:
            length = 0
        if length is None and request.http_version != "1.1":
            request.keep_alive = False  # HTTP/1.0 has no chunked coding: the close ends the body
        elif length is None:
            lines.append(b"Transfer-Encoding: chunked\r\n")
        elif not bodyless:
            lines.append(b"Content-Length: %d\r\n" % length)
        if not request.keep_alive:
            self._closing = True
            lines.append(b"Connection: close\r\n")
        elif request.http_version == "1.0":
            lines.append(b"Connection: keep-alive\r\n")
        lines.append(b"\r\n")
        return b"".join(lines)

    def _end_response(self, request: _Request) -> None:
        if not request.keep_alive and self._transport is not None:
            self._queue.clear()
            self._transport.close()

    def _simple(
        self,
        request: _Request,
        status: int,
        body: bytes,
        headers: list[tuple[bytes, bytes]] | None = None,
        content_type: bytes = b"text/plain; charset=utf-8",
    ) -> None:
        no_body = status in (204, 304)
        all_headers = ([] if no_body else [(b"Content-Type", content_type)]) + (headers or [])
        head = self._head(request, status, all_headers, len(body), bodyless=no_body)
        if no_body or request.method == "HEAD":
            self._write(head)
        else:
            self._write(head + body)
        self._end_response(request)

    async def _drain(self) -> None:
        if self._write_paused and not self._closing_transport():
            self._writable = self._loop.create_future()
            await self._writable

    def _closing_transport(self) -> bool:
        return self._transport is None or self._transport.is_closing()

    def _wake_writer(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    def _set_reading(self, on: bool) -> None:
        if self._transport is None or self._transport.is_closing() or on != self._read_paused:
            return
        self._read_paused = not on
        if on:
            self._transport.resume_reading()
        else:
            self._transport.pause_reading()

    # -- routes ----------------------------------------------------------------------------------------

    def route_index(self, request: _Request, query: dict[str, list[str]]) -> None:
        self._simple(request, 200, _HTML, content_type=b"text/html; charset=utf-8")

    def route_hello(self, request: _Request, query: dict[str, list[str]]) -> None:
        self._simple(request, 200, b"hello")

    def route_echo(self, request: _Request, query: dict[str, list[str]]) -> None:
        report = {
            "method": request.method,
            "target": request.target.decode("latin-1"),
            "http_version": request.http_version,
            "headers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in request.headers],
            "trailers": [[n.decode("latin-1"), v.decode("latin-1")] for n, v in request.trailers],
            "body_len": request.body_len,
            "body_sha256": request.body_sha256,
        }
        self._simple(request, 200, json.dumps(report).encode(), content_type=b"application/json")

    def route_sink(self, request: _Request, query: dict[str, list[str]]) -> None:
        report = {"body_len": request.body_len, "body_sha256": request.body_sha256}
        self._simple(request, 200, json.dumps(report).encode(), content_type=b"application/json")

    def route_status(self, request: _Request, query: dict[str, list[str]]) -> None:
        code = _int_param(query, "code", 200, 200, 599)
        self._simple(request, code, _status_line(code)[9:])

    def route_cacheable(self, request: _Request, query: dict[str, list[str]]) -> Awaitable[None] | None:
        """Cache-Control: public, max-age=N; the body and X-Origin-Hits count the requests for this id
        that reached the origin (a cache in front answers the others), counted when they arrive."""
        max_age = _int_param(query, "max_age", 60, 0, 86_400)
        ms = _int_param(query, "ms", 0, 0, _MAX_SLOW_MS)
        key = query.get("id", [""])[0]
        if key not in _cacheable_hits and len(_cacheable_hits) >= _MAX_CACHEABLE_IDS:
            _cacheable_hits.clear()
        hits = _cacheable_hits[key] = _cacheable_hits.get(key, 0) + 1
        headers = [(b"Cache-Control", b"public, max-age=%d" % max_age), (b"X-Origin-Hits", b"%d" % hits)]
        body = json.dumps({"id": key, "hits": hits}).encode()
        if not ms:
            self._simple(request, 200, body, headers, content_type=b"application/json")
            return None

        async def answer() -> None:
            await asyncio.sleep(ms / 1000)
            self._simple(request, 200, body, headers, content_type=b"application/json")

        return answer()

    def route_slow(self, request: _Request, query: dict[str, list[str]]) -> Awaitable[None]:
        ms = _int_param(query, "ms", 1000, 0, _MAX_SLOW_MS)

        async def answer() -> None:
            await asyncio.sleep(ms / 1000)
            self._simple(request, 200, b"slept %d ms\n" % ms)

        return answer()

    def route_bytes(self, request: _Request, query: dict[str, list[str]]) -> Awaitable[None] | None:
        total = _int_param(query, "n", 1024, 0, 1 << 40)
        piece = _int_param(query, "piece", 65536, 1, _MAX_PIECE)
        chunked = query.get("chunked", ["0"])[0] == "1" and request.http_version == "1.1"
        content_type = [(b"Content-Type", b"application/octet-stream")]
        self._write(self._head(request, 200, content_type, None if chunked else total))
        if request.method == "HEAD":
            self._end_response(request)
            return None
        return self._stream_bytes(request, total, piece, chunked)

    async def _stream_bytes(self, request: _Request, total: int, piece: int, chunked: bool) -> None:
        block = memoryview(b"x" * min(piece, total))
        remaining, written = total, 0
        while remaining and not self._closing_transport():
            size = min(piece, remaining)
            data = block[:size]
            if chunked:
                self._write(b"%x\r\n" % size)
                self._write(data)
                self._write(b"\r\n")
            else:
                self._write(data)
            remaining -= size
            written += 1
            if self._write_paused:
                await self._drain()
            elif written % _YIELD_EVERY == 0:
                await asyncio.sleep(0)
        if chunked:
            self._write(b"0\r\n\r\n")
        self._end_response(request)

    def route_trailers(self, request: _Request, query: dict[str, list[str]]) -> None:
        body = b"".join(_TRAILER_PIECES)
        checksum = b"sha256=" + hashlib.sha256(body).hexdigest().encode()
        if request.http_version != "1.1":  # no chunked coding for HTTP/1.0: send it as a header
            self._simple(request, 200, body, [(b"X-Checksum", checksum)])
            return
        head = self._head(request, 200, [(b"Content-Type", b"text/plain"), (b"Trailer", b"X-Checksum")], None)
        if request.method == "HEAD":
            self._write(head)
        else:
            chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in _TRAILER_PIECES)
            self._write(head + chunks + b"0\r\nX-Checksum: " + checksum + b"\r\n\r\n")
        self._end_response(request)

    def route_ws(self, request: _Request, query: dict[str, list[str]]) -> None:
        key = request.header(b"sec-websocket-key")
        upgrade = (request.header(b"upgrade") or b"").lower()
        if not request.upgrade or upgrade != b"websocket":
            self._simple(request, 426, b"websocket upgrade required\n", [(b"Upgrade", b"websocket")])
            return
        if key is None or request.header(b"sec-websocket-version") != b"13":
            self._simple(request, 400, b"Sec-WebSocket-Key and Sec-WebSocket-Version: 13 are required\n")
            return
        accept = base64.b64encode(hashlib.sha1(key.strip() + _WS_GUID).digest())
        self._write(
            b"HTTP/1.1 101 Switching Protocols\r\n" + _PID_HEADER + b"Upgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        self._tunnel = True
        self._queue.clear()
        backlog, self._tunnel_backlog = self._tunnel_backlog, b""
        if backlog:
            self._write(backlog)


_Handler = Callable[[OriginProtocol, _Request, dict[str, list[str]]], Awaitable[None] | None]
_GET = frozenset({"GET", "HEAD"})
_ROUTES: dict[str, tuple[frozenset[str], _Handler]] = {
    "/": (_GET, OriginProtocol.route_index),
    "/hello": (_GET, OriginProtocol.route_hello),
    "/echo": (frozenset(), OriginProtocol.route_echo),
    "/bytes": (_GET, OriginProtocol.route_bytes),
    "/sink": (frozenset({"POST", "PUT"}), OriginProtocol.route_sink),
    "/slow": (_GET, OriginProtocol.route_slow),
    "/cacheable": (_GET, OriginProtocol.route_cacheable),
    "/status": (_GET, OriginProtocol.route_status),
    "/trailers": (_GET, OriginProtocol.route_trailers),
    "/ws": (frozenset({"GET"}), OriginProtocol.route_ws),
}


async def start_origin(host: str, port: int) -> tuple[asyncio.AbstractServer, int]:
    """Serve the origin on (host, port) in the running loop; returns the server and its bound port."""
    server = await asyncio.get_running_loop().create_server(OriginProtocol, host, port)
    bound_port: int = server.sockets[0].getsockname()[1]
    return server, bound_port


async def _serve(host: str, port: int) -> None:
    server, bound = await start_origin(host, port)
    await serve_until_stopped(server, f"origin listening on {host}:{bound}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shieldwall.drill.origin", description=__doc__)
    parser.add_argument("--listen", type=parse_listen, default="127.0.0.1:0", help="HOST:PORT (port 0: any)")
    args = parser.parse_args(argv)
    host, port = args.listen
    uvloop.run(_serve(host, port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
