"""Connections to the origin: a keep-alive pool with a size cap, and the response side of an exchange.

A pooled connection is reused only after a complete, well-framed response to a completely sent request;
anything partial, unexpected or late closes it (an upstream connection that carried a partial or failed
message must never carry the next one).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import TYPE_CHECKING, cast

import httptools

from shieldwall.dataplane.client import ClientConnection
from shieldwall.dataplane.exchange import Exchange
from shieldwall.http1.forwarding import (
    RESPONSE_HANDLED,
    InvalidResponse,
    ResponseFields,
    ResponseFraming,
    client_response_head,
    last_chunk,
    response_framing,
    upstream_request_head,
)
from shieldwall.http1.forwarding import chunk as frame_chunk

if TYPE_CHECKING:
    from shieldwall.dataplane.server import ShieldServer

log = logging.getLogger("shieldwall.upstream")


class UpstreamConnection(asyncio.Protocol):
    __slots__ = (
        "_closed",
        "_fields",
        "_framing",
        "_head_only",
        "_in_body",
        "_interim",
        "_status",
        "_trailers",
        "deadline",
        "exchange",
        "idle_since",
        "parser",
        "pool",
        "transport",
        "usable",
    )

    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.exchange: Exchange | None = None
        self.usable = True
        self.idle_since = 0.0
        self.deadline = 0.0  # for the response (head or next body bytes); 0 = none
        self._fields = ResponseFields([], [])
        self._trailers: list[tuple[bytes, bytes]] = []
        self._in_body = False
        self._interim = False
        self._head_only = False  # a response with no body whatever its framing fields say (HEAD)
        self._framing: ResponseFraming | None = None
        self._status = 0
        self._closed = False

    # ---------------------------------------------------------------- lifecycle

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports don't subclass it

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.usable = False
        self.pool.forget(self)
        del self.parser  # its callbacks are bound to this connection: a cycle (see ClientConnection's)
        ex = self.exchange
        self.exchange = None
        if ex is None or ex.cancelled:
            return
        framing = self._framing
        if framing is not None and self._in_body and framing.close_delimited:
            if framing.chunked:
                ex.client.response_body(ex, last_chunk([]))
            self._complete(ex, keep_alive_upstream=False)  # the close was the end of the body
            return
        if ex.response_started:
            log.warning("origin closed mid-response to %s", ex.client_ip)
            ex.client.abort()
            return
        # The head was written, so the origin may have acted on it: only idempotent requests are retried.
        self.pool.failed(ex, "origin closed the connection", reached_origin=True)

    def eof_received(self) -> bool | None:
        return None  # close our side too; connection_lost follows

    def pause_writing(self) -> None:
        ex = self.exchange
        if ex is not None:
            ex.client.pause_for_upstream()

    def resume_writing(self) -> None:
        ex = self.exchange
        if ex is not None:
            ex.client.resume_for_upstream()

    def pause_reading(self) -> None:
        if self.transport is not None and not self._closed:
            self.transport.pause_reading()

    def resume_reading(self) -> None:
        if self.transport is not None and not self._closed:
            self.transport.resume_reading()

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self._closed:
            self.transport.write(data)

    def close(self) -> None:
        self.usable = False
        if self.transport is not None and not self._closed:
            self._closed = True
            self.transport.close()
        self.pool.forget(self)

    # ---------------------------------------------------------------- exchange

    def start(self, ex: Exchange, now: float) -> None:
        assert ex.head is not None
        self.exchange = ex
        self._fields = ResponseFields([], [])
        self._trailers = []
        self._in_body = False
        self._interim = False
        self._framing = None
        self._status = 0
        self._head_only = ex.head.method == b"HEAD"
        self.deadline = 0.0
        ex.attempts += 1
        if not ex.origin_at:
            ex.origin_at = now
            self.pool.server.telemetry.counters.origin_start()
        ex.attach(self, upstream_request_head(ex.head, ex.client.forwarding_context(ex.client_ip)))

    def request_finished(self) -> None:
        """The whole request is on its way: the origin now has read_timeout to start answering."""
        self.deadline = self.pool.server.clock.monotonic() + self.pool.read_timeout

    def client_gone(self, ex: Exchange) -> None:
        """The client went away or sent bad bytes mid-exchange: this connection carried a partial message."""
        if self.exchange is ex:
            self.exchange = None
            self.close()

    def on_tick(self, now: float) -> None:
        if self.deadline and now > self.deadline and self.exchange is not None:
            ex = self.exchange
            self.exchange = None
            self.close()
            if ex.response_started:
                ex.client.abort()
            else:
                ex.client.answer_upstream_failure(ex, 504, "origin too slow")

    # ---------------------------------------------------------------- bytes in

    def data_received(self, data: bytes) -> None:
        ex = self.exchange
        if ex is None:
            self.close()  # bytes nobody asked for: the connection can't be trusted any more
            return
        if self.deadline:
            self.deadline = self.pool.server.clock.monotonic() + self.pool.read_timeout
        client = ex.client
        client.cork()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade as exc:
            self._upgraded(ex, data[exc.args[0] :])
        except (httptools.HttpParserError, InvalidResponse) as exc:
            cause = exc.__context__ if isinstance(exc, httptools.HttpParserCallbackError) else exc
            log.warning("bad response from origin: %s", cause)
            self.exchange = None
            self.close()
            if not ex.cancelled:
                client.answer_upstream_failure(ex, 502, "invalid response from origin")
        finally:
            client.uncork()

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._in_body:
            self._trailers.append((name, value))
        else:
            fields = self._fields
            lname = name.lower()
            if lname in RESPONSE_HANDLED:
                fields.handled.append((lname, value))
            else:
                fields.lines.append(b"%s: %s\r\n" % (name, value))
            if len(fields.lines) + len(fields.handled) > 256:
                raise InvalidResponse("origin sent too many header fields")

    def on_headers_complete(self) -> None:
        ex = self.exchange
        assert ex is not None and ex.head is not None
        status = self.parser.get_status_code()
        if 100 <= status < 200 and status != 101:
            self._interim = True  # 1xx interim responses (103 Early Hints, ...) are not forwarded
            return
        if status == 101 and ex.head.upgrade is None:
            raise InvalidResponse("origin switched protocols without being asked")
        door = self.pool.server.door
        if door is not None:
            door.learn_sessions(self._fields.lines)
        framing = response_framing(status, self._fields, ex.head.method, ex.head.version)
        self._framing = framing
        self._status = status
        fill = ex.cache
        if fill is not None and fill.fetching and fill.response_head(ex, status, self._fields, framing):
            self.exchange = None  # a stale copy answered instead of the origin's error: drop the rest
            self.close()
            return
        client = ex.client
        # Only this request decides: later pipelined bytes (even a bad request) are answered in turn.
        keep_alive = (
            ex.head.keep_alive
            and ex.request_complete
            and not (framing.close_delimited and not framing.chunked)
        )
        if status == 101:
            keep_alive = False
        head = client_response_head(
            status,
            self._fields,
            framing,
            keep_alive=keep_alive,
            client_version=ex.head.version,
            via=self.pool.server.via,
            upgrade=ex.head.upgrade if status == 101 else None,
        )
        client.response_head(ex, head, status, keep_alive)
        self._in_body = True
        if self._head_only and status != 101:
            self._complete(ex, keep_alive_upstream=False)  # llhttp would wait for a body that never comes

    def on_body(self, body: bytes) -> None:
        ex = self.exchange
        if ex is None or self._interim:
            return
        framing = self._framing
        assert framing is not None
        fill = ex.cache
        if fill is not None and fill.builder is not None:
            fill.tee(ex, body)
        ex.client.response_body(ex, frame_chunk(body) if framing.chunked else body)

    def on_message_complete(self) -> None:
        if self._interim:
            self._interim = False
            self._fields = ResponseFields([], [])
            return
        ex = self.exchange
        if ex is None or self._framing is None or self._status == 101:
            return  # a 101 continues in _upgraded, when llhttp hands over the rest of the bytes
        if self._framing.chunked:
            ex.client.response_body(ex, last_chunk(self._trailers))
        self._complete(ex, keep_alive_upstream=self.parser.should_keep_alive())

    def _complete(self, ex: Exchange, keep_alive_upstream: bool) -> None:
        self.exchange = None
        self.deadline = 0.0
        # After a HEAD response llhttp still expects the body its framing fields announce, so that
        # connection is not reused (measured rare in real traffic; correctness over one reconnect).
        if keep_alive_upstream and ex.request_sent and not self._closed and not self._head_only:
            self.pool.release(self)  # first, so the client's next pipelined request can take it
        else:
            self.close()
        if ex.cache is not None and ex.cache.fetching:
            ex.cache.fetched()  # stored; the requests waiting on this fetch are answered
        ex.client.finish_exchange(ex, ex.response_keep_alive)

    def _upgraded(self, ex: Exchange, leftover: bytes) -> None:
        """101 Switching Protocols: from now on both connections are one byte tunnel."""
        self.exchange = None
        self.deadline = 0.0
        self.pool.forget(self)  # never returns to the pool
        assert self.transport is not None
        tunnel = _Tunnel(ex.client)
        self.transport.set_protocol(tunnel)
        tunnel.connection_made(self.transport)
        ex.client.start_tunnel(ex, self.transport, leftover)


class _Tunnel(asyncio.Protocol):
    """The origin side of a WebSocket tunnel: bytes straight to the client, with back-pressure."""

    def __init__(self, client: ClientConnection) -> None:
        self.client = client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.client.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.close()

    def pause_writing(self) -> None:
        if self.client.transport is not None:
            self.client.transport.pause_reading()

    def resume_writing(self) -> None:
        if self.client.transport is not None:
            self.client.transport.resume_reading()


class UpstreamPool:
    """Keep-alive connections to one origin, at most `size` per worker; requests queue for a free one."""

    def __init__(self, server: ShieldServer) -> None:
        self.server = server
        cfg = server.settings.upstream
        self.host, self.port = cfg.host_port
        self.size = cfg.pool_size
        self.connect_timeout = cfg.connect_timeout
        self.read_timeout = cfg.read_timeout
        self.idle_timeout = cfg.idle_timeout
        self.retries = cfg.retries
        self.idle: list[UpstreamConnection] = []
        self.busy: set[UpstreamConnection] = set()
        self.opening = 0
        self.waiters: deque[Exchange] = deque()

    @property
    def total(self) -> int:
        return len(self.idle) + len(self.busy) + self.opening

    def acquire(self, ex: Exchange) -> None:
        now = self.server.clock.monotonic()
        while self.idle:
            conn = self.idle.pop()  # LIFO: the warmest connection, and idle ones at the bottom age out
            if conn.usable:
                self.busy.add(conn)
                conn.start(ex, now)
                return
        if self.total < self.size:
            self.opening += 1
            self.server.loop.create_task(self._open(ex))
        else:
            ex.waiting_since = now
            self.waiters.append(ex)

    async def _open(self, ex: Exchange) -> None:
        loop = self.server.loop
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(lambda: UpstreamConnection(self), self.host, self.port),
                self.connect_timeout,
            )
        except (OSError, TimeoutError) as exc:
            self.opening -= 1
            ex.attempts += 1
            reason = "timed out" if isinstance(exc, TimeoutError) else exc.strerror or str(exc)
            self.failed(ex, f"cannot connect to origin: {reason}", reached_origin=False)
            self._serve_waiter()
            return
        self.opening -= 1
        if ex.cancelled:
            self.release(conn)
            return
        self.busy.add(conn)
        conn.start(ex, self.server.clock.monotonic())

    def failed(self, ex: Exchange, reason: str, *, reached_origin: bool) -> None:
        if ex.cancelled:
            return
        ex.detach_for_retry()
        if ex.retriable(self.retries, reached_origin):
            log.info("retrying %s after: %s", ex.head.target if ex.head else b"?", reason)
            self.acquire(ex)
            return
        log.warning("origin failure for %s: %s", ex.client_ip, reason)
        ex.client.answer_upstream_failure(ex, 502, reason)

    def release(self, conn: UpstreamConnection) -> None:
        self.busy.discard(conn)
        if not conn.usable:
            return
        while self.waiters:
            ex = self.waiters.popleft()
            if not ex.cancelled:
                self.busy.add(conn)
                conn.start(ex, self.server.clock.monotonic())
                return
        conn.idle_since = self.server.clock.monotonic()
        self.idle.append(conn)

    def forget(self, conn: UpstreamConnection) -> None:
        self.busy.discard(conn)
        if conn in self.idle:
            self.idle.remove(conn)
        self._serve_waiter()

    def _serve_waiter(self) -> None:
        while self.waiters and self.total < self.size:
            ex = self.waiters.popleft()
            if not ex.cancelled:
                self.acquire(ex)
                return

    def on_tick(self, now: float) -> None:
        for conn in list(self.busy):
            conn.on_tick(now)
        if self.idle and now - self.idle[0].idle_since > self.idle_timeout:
            stale = [c for c in self.idle if now - c.idle_since > self.idle_timeout]
            for conn in stale:
                conn.close()
        while self.waiters and now - self.waiters[0].waiting_since > self.connect_timeout:
            ex = self.waiters.popleft()
            if not ex.cancelled:
                ex.client.answer_upstream_failure(ex, 503, "all origin connections busy")

    def close_all(self) -> None:
        for conn in [*self.idle, *self.busy]:
            conn.close()
