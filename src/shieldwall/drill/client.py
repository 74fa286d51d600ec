"""A small asyncio HTTP/1.1 client for drills: one visitor or bot per `Session`, on loopback only.

Why not a library: a drill needs things general clients hide or do not have — binding each connection to
a chosen source address in 127.0.0.0/8 (one machine playing thousands of clients), headers sent exactly
in the order given (a bot copying a browser's header order), a label on every request for the origin's
counters, and a hard bound on everything (time, response size, one request at a time per session).

A `Session` holds one keep-alive connection and a cookie jar. A request never raises for network
trouble: it returns a `Response` whose `error` says what went wrong (status 0 when there was no
complete response), because a drill counts failures, it does not stop at them. Like a browser, a GET
that fails on a reused connection before any byte of answer (the server closed it while idle) is sent
once more on a new one. Responses are parsed by httptools (llhttp), the same parser the shield uses.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, cast

import httptools

from shieldwall.drill.loopback import loopback_endpoint, require_loopback

DRILL_KIND_HEADER: Final = "x-drill-kind"
MAX_BODY: Final = 1 << 20
MAX_HEAD: Final = 64 * 1024
MAX_COOKIES: Final = 50
# Linux's IP_BIND_ADDRESS_NO_PORT (socket module: 3.12+): bind() fixes only the address and connect()
# picks the port by the whole 4-tuple, so one source can open as many connections as the target allows
# instead of running out of ports held in TIME_WAIT.
_BIND_ADDRESS_NO_PORT: Final = getattr(socket, "IP_BIND_ADDRESS_NO_PORT", 24)
_RETRYABLE: Final = frozenset({"GET", "HEAD"})


@dataclass(frozen=True)
class Target:
    """Where drill traffic goes: a loopback address and port, and the Host header to send."""

    host: str
    port: int
    host_header: str

    def __post_init__(self) -> None:
        if require_loopback(self.host) != self.host:
            raise ValueError(
                f"{self.host!r} is not written as a canonical loopback address; use Target.parse"
            )

    @classmethod
    def parse(cls, url: str, host_header: str | None = None) -> Target:
        """`url` is http://HOST:PORT or HOST:PORT on loopback (NotLoopbackError otherwise)."""
        if "://" in url and not url.startswith("http://"):
            raise ValueError(f"drill target {url!r}: only http:// is supported")
        host, port = loopback_endpoint(url)
        default_host = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        return cls(host, port, host_header or default_host)


@dataclass(frozen=True, slots=True)
class Response:
    """What one request got. `status` 0 means no complete response: `error` says why ("timeout",
    "refused", "reset", "closed", "too large", "bad response", "connect: EADDRNOTAVAIL", ...).
    `latency` runs from the request's start (connecting included, when it needed a connection) to
    the last byte of the response, or to the failure."""

    method: str
    target: str
    status: int
    headers: tuple[tuple[bytes, bytes], ...]  # names lower-cased, in the order received
    body: bytes
    latency: float
    error: str = ""
    new_connection: bool = False

    @property
    def ok(self) -> bool:
        """Answered with a success or a redirect."""
        return 200 <= self.status < 400

    def header(self, name: bytes) -> bytes | None:
        """The first value of header `name` (lower-case), or None."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


@dataclass
class CookieJar:
    """One visitor's cookies for the one site a drill talks to: name → value. Path, Domain and Expires
    are ignored; Max-Age=0 (or an empty value) deletes. At most MAX_COOKIES are kept."""

    cookies: dict[str, str] = field(default_factory=dict)

    def store(self, set_cookie: bytes) -> None:
        pair, _, attributes = set_cookie.decode("latin-1").partition(";")
        name, sep, value = pair.partition("=")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            return
        expired = any(a.strip().lower().replace(" ", "") == "max-age=0" for a in attributes.split(";"))
        if expired or not value:
            self.cookies.pop(name, None)
        elif name in self.cookies or len(self.cookies) < MAX_COOKIES:
            self.cookies[name] = value

    def header(self) -> str:
        """The Cookie header value, "" when the jar is empty."""
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items())


class _ExchangeError(Exception):
    """One request failed; `reason` is the Response's `error`, `answered` whether any byte came back."""

    def __init__(self, reason: str, answered: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.answered = answered


class _Connection(asyncio.Protocol):
    """One TCP connection, one request at a time. Parser callbacks only collect; bounded by MAX_HEAD
    and the body limit."""

    def __init__(self, max_body: int) -> None:
        self._max_body = max_body
        self._parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.usable = True  # False once closed, told to close, or it sent something unasked
        self._waiter: asyncio.Future[None] | None = None
        self._failure = ""
        self._answered = False
        self._head_size = 0
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._body_size = 0

    # -- transport callbacks ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports do not subclass it

    def connection_lost(self, exc: Exception | None) -> None:
        self.usable = False
        reset = isinstance(exc, ConnectionResetError)
        self._finish("reset" if reset else "closed")

    def data_received(self, data: bytes) -> None:
        if self._waiter is None:  # an answer to nothing (say a 408 before closing): never reuse this
            self._close()
            return
        self._answered = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:
            self._finish(self._failure or "bad response")
            self._close()

    # -- parser callbacks ------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._waiter is None or self._waiter.done():  # a second answer to one request, in one read
            self.usable = False
            raise ValueError("an answer nobody asked for")

    def on_header(self, name: bytes, value: bytes) -> None:
        self._head_size += len(name) + len(value) + 4
        if self._head_size > MAX_HEAD:
            self._failure = "too large"
            raise ValueError(self._failure)  # httptools turns it into HttpParserCallbackError
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        self.status = self._parser.get_status_code()
        if not self._parser.should_keep_alive():
            self.usable = False

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self._max_body:
            self._failure = "too large"
            raise ValueError(self._failure)
        self._body.append(body)

    def on_message_complete(self) -> None:
        self._finish("")

    # -- the one request -------------------------------------------------------------------------------

    async def exchange(self, data: bytes) -> bytes:
        """Send one request and wait for its complete response; returns the body, sets `status` and
        `headers`. Raises _ExchangeError."""
        if self.transport is None or self.transport.is_closing():
            raise _ExchangeError("closed", answered=False)
        loop = asyncio.get_running_loop()
        self._waiter = loop.create_future()
        self._failure, self._answered, self._head_size, self._body_size = "", False, 0, 0
        self.status, self.headers, self._body = 0, [], []
        self.transport.write(data)
        try:
            await self._waiter
        finally:
            self._waiter = None
        if self._failure:
            self.usable = False
            raise _ExchangeError(self._failure, self._answered)
        if not self.usable:
            self._close()
        return b"".join(self._body)

    def _finish(self, failure: str) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._failure = self._failure or failure
            self._waiter.set_result(None)

    def _close(self) -> None:
        self.usable = False
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    def abort(self) -> None:
        self.usable = False
        if self.transport is not None:
            self.transport.abort()


class Session:
    """One client: a source address, a keep-alive connection (opened when needed), a cookie jar.
    Every request carries `x-drill-kind: <kind>` so the campaign site can count legit and attack
    traffic apart. One request at a time (a second concurrent call is a RuntimeError)."""

    def __init__(
        self,
        target: Target,
        *,
        kind: str,
        source: str | None = None,
        timeout: float = 10.0,
        max_body: int = MAX_BODY,
        jar: CookieJar | None = None,
    ) -> None:
        if source is not None:
            source = require_loopback(source)
            if (":" in source) != (":" in target.host):
                raise ValueError(f"source {source} and target {target.host} are not the same IP version")
        self.target = target
        self.kind = kind
        self.source = source
        self.timeout = timeout
        self.max_body = max_body
        self.jar = CookieJar() if jar is None else jar
        self._connection: _Connection | None = None
        self._busy = False

    async def request(
        self, method: str, target: str, headers: Sequence[tuple[str, str]] = (), body: bytes = b""
    ) -> Response:
        """Send `method target` with Host first, then `headers` in the order given, then
        Content-Length (when there is a body or the method is POST/PUT), Cookie (from the jar) and the
        drill label. Set-Cookie answers go into the jar. Never raises for network trouble."""
        if self._busy:
            raise RuntimeError("a Session sends one request at a time")
        self._busy = True
        loop = asyncio.get_running_loop()
        started = loop.time()
        data = self._serialise(method, target, headers, body)
        try:
            reused = self._connection is not None and self._connection.usable
            try:
                response = await self._attempt(method, target, data, started)
            except _ExchangeError as exc:
                if not (reused and not exc.answered and method in _RETRYABLE):
                    raise
                response = await self._attempt(method, target, data, started)
        except _ExchangeError as exc:
            return Response(method, target, 0, (), b"", loop.time() - started, exc.reason)
        finally:
            self._busy = False
        for name, value in response.headers:
            if name == b"set-cookie":
                self.jar.store(value)
        return response

    async def close(self) -> None:
        """Close the connection, if any (the jar stays)."""
        connection, self._connection = self._connection, None
        if connection is not None and connection.transport is not None:
            connection.transport.close()

    async def _attempt(self, method: str, target: str, data: bytes, started: float) -> Response:
        loop = asyncio.get_running_loop()
        connection = self._connection
        fresh = connection is None or not connection.usable
        try:
            async with asyncio.timeout(self.timeout - (loop.time() - started)):
                if connection is None or not connection.usable:
                    await self.close()
                    connection = self._connection = await self._connect()
                body = await connection.exchange(data)
        except TimeoutError:
            if connection is not None:
                connection.abort()
            raise _ExchangeError("timeout", answered=True) from None
        except OSError as exc:
            raise _ExchangeError(_os_reason(exc), answered=False) from None
        headers = tuple(connection.headers)
        return Response(method, target, connection.status, headers, body, loop.time() - started, "", fresh)

    async def _connect(self) -> _Connection:
        sock = await connect_socket(self.target, self.source)
        try:
            _, protocol = await asyncio.get_running_loop().create_connection(
                lambda: _Connection(self.max_body), sock=sock
            )
        except BaseException:
            sock.close()
            raise
        return protocol

    def _serialise(self, method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes) -> bytes:
        lines = [f"{method} {target} HTTP/1.1", f"Host: {self.target.host_header}"]
        lines.extend(f"{name}: {value}" for name, value in headers)
        if body or method in ("POST", "PUT"):
            lines.append(f"Content-Length: {len(body)}")
        if cookie := self.jar.header():
            lines.append(f"Cookie: {cookie}")
        lines.append(f"{DRILL_KIND_HEADER}: {self.kind}")
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def connect_socket(target: Target, source: str | None) -> socket.socket:
    """A non-blocking TCP socket connected to `target`, from `source` (any port) when given. Raises
    OSError. Sessions use it, and so do attacks that speak raw bytes (slow headers and bodies)."""
    family = socket.AF_INET6 if ":" in target.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        if source is not None:
            if family == socket.AF_INET:
                sock.setsockopt(socket.IPPROTO_IP, _BIND_ADDRESS_NO_PORT, 1)
            sock.bind((source, 0))
        await asyncio.get_running_loop().sock_connect(sock, (target.host, target.port))
    except BaseException:
        sock.close()
        raise
    return sock


def _os_reason(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError):
        return "reset"
    name = errno.errorcode.get(exc.errno or 0, "")
    return f"connect: {name or exc.__class__.__name__}"
