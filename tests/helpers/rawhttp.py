"""A raw HTTP/1.x client over one socket: it sends bytes exactly as written and parses responses
strictly, so a test sees framing (interim responses, chunks, trailers, closes) that http.client hides."""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

MAX_HEAD = 64 * 1024


@dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    body_len: int = 0
    body_sha256: str = ""
    trailers: list[tuple[str, str]] = field(default_factory=list)
    chunked: bool = False

    def header(self, name: str) -> str | None:
        """The first value of a header (case-insensitive), or None."""
        values = self.header_all(name)
        return values[0] if values else None

    def header_all(self, name: str) -> list[str]:
        return [value for key, value in self.headers if key.lower() == name.lower()]

    def json(self) -> Any:
        return json.loads(self.body)


def build_request(
    method: str,
    target: str,
    host: str = "test.local",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
    version: str = "HTTP/1.1",
) -> bytes:
    """A request with Host first and Content-Length when there is a body (unless headers frame it)."""
    lines = [f"{method} {target} {version}", f"Host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers or []]
    framed = any(name.lower() in ("content-length", "transfer-encoding") for name, _ in headers or [])
    if body and not framed:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class Connection:
    """One client connection. Every read is bounded by `timeout` seconds of silence."""

    def __init__(self, address: tuple[str, int] | None, timeout: float = 5.0) -> None:
        self.sock = socket.create_connection(address, timeout=timeout) if address else socket.socket()
        self.buf = b""

    @classmethod
    def over(cls, sock: socket.socket) -> Connection:
        """HTTP over a socket set up elsewhere (TLS-wrapped, or after a PROXY header)."""
        conn = cls(None)
        conn.sock.close()
        conn.sock = sock
        return conn

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self) -> bool:
        data = self.sock.recv(256 * 1024)
        self.buf += data
        return bool(data)

    def _line(self) -> bytes:
        while (end := self.buf.find(b"\r\n")) < 0:
            if len(self.buf) > MAX_HEAD:
                raise AssertionError(f"line longer than {MAX_HEAD} bytes: {self.buf[:200]!r}")
            if not self._fill():
                raise ConnectionError(f"closed mid-line after {self.buf[:200]!r}")
        line, self.buf = self.buf[:end], self.buf[end + 2 :]
        return line

    def _fields(self) -> list[tuple[str, str]]:
        fields = []
        while line := self._line():
            name, sep, value = line.decode("latin-1").partition(":")
            assert sep and name == name.strip(), f"malformed field line {line!r}"
            fields.append((name, value.strip(" \t")))
        return fields

    def _body_chunks(self, size: int | None) -> Iterator[bytes]:
        """Yield body pieces: `size` bytes, or until close when None."""
        remaining = size
        while remaining is None or remaining > 0:
            if not self.buf and not self._fill():
                if remaining is None:
                    return
                raise ConnectionError(f"closed with {remaining} body bytes missing")
            take = len(self.buf) if remaining is None else min(remaining, len(self.buf))
            piece, self.buf = self.buf[:take], self.buf[take:]
            if remaining is not None:
                remaining -= take
            yield piece

    def read_response(self, method: str = "GET", keep_body: bool = True) -> Response:
        """The next response, interim (1xx) ones included. With keep_body False the body is only
        counted and hashed, so a huge download costs no memory."""
        status_line = self._line().decode("latin-1")
        version, status, reason = [*status_line.split(" ", 2), ""][:3]
        assert version in ("HTTP/1.0", "HTTP/1.1"), f"bad status line {status_line!r}"
        response = Response(version, int(status), reason, self._fields())
        if response.status < 200 or response.status in (204, 304) or method == "HEAD":
            return response
        digest = hashlib.sha256()
        kept: list[bytes] = []
        te = (response.header("transfer-encoding") or "").lower()
        length = response.header("content-length")
        if te == "chunked":
            response.chunked = True
            while size := int(self._line().split(b";")[0], 16):
                for piece in self._body_chunks(size):
                    digest.update(piece)
                    response.body_len += len(piece)
                    if keep_body:
                        kept.append(piece)
                assert self._line() == b"", "chunk data not followed by CRLF"
            response.trailers = self._fields()
        else:
            for piece in self._body_chunks(int(length) if length is not None else None):
                digest.update(piece)
                response.body_len += len(piece)
                if keep_body:
                    kept.append(piece)
        response.body = b"".join(kept)
        response.body_sha256 = digest.hexdigest()
        return response

    def read_final(self, method: str = "GET", keep_body: bool = True) -> Response:
        """The next final (non-1xx) response, skipping interim ones."""
        while (response := self.read_response(method, keep_body)).status < 200:
            pass
        return response

    def request(self, method: str, target: str, **kwargs: Any) -> Response:
        self.send(build_request(method, target, **kwargs))
        return self.read_final(method)

    def peer_closed(self, within: float) -> bool:
        """True when the peer closes (or resets) within `within` s without sending anything more."""
        deadline = time.monotonic() + within
        old_timeout = self.sock.gettimeout()
        try:
            while (left := deadline - time.monotonic()) > 0:
                self.sock.settimeout(left)
                try:
                    data = self.sock.recv(65536)
                except TimeoutError:
                    return False
                except ConnectionResetError:
                    return True
                if not data:
                    return True
                self.buf += data
            return False
        finally:
            self.sock.settimeout(old_timeout)


def get(address: tuple[str, int], target: str, **kwargs: Any) -> Response:
    """One request on a fresh connection."""
    with Connection(address) as conn:
        return conn.request("GET", target, **kwargs)
