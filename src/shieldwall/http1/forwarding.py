"""Rebuilding message heads for the next hop: hop-by-hop fields out, forwarding fields in.

The request head the origin receives is serialised from validated fields; the client's raw bytes are never
relayed, so a parser disagreement downstream of us has nothing ambiguous to disagree about.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

from shieldwall.http1.fields import HOP_BY_HOP, PROXY_SET
from shieldwall.http1.request import RequestHead

# Status lines are built once, not per response.
_STATUS_LINES: dict[int, bytes] = {
    s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode()) for s in HTTPStatus
}


def status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    return line if line is not None else b"HTTP/1.1 %d Unknown\r\n" % status


@dataclass(frozen=True, slots=True)
class ForwardingContext:
    """What the shield knows about the connection a request came on."""

    client_ip: str
    peer_ip: str
    peer_trusted: bool  # the peer is a configured trusted proxy: its X-Forwarded-For chain is kept
    scheme: bytes  # b"http" or b"https"
    via: bytes  # e.g. b"1.1 shieldwall"


def _forwarded_node(ip: str) -> bytes:
    return b'"[%s]"' % ip.encode() if ":" in ip else ip.encode()


def _strip(headers: list[tuple[bytes, bytes]], connection_tokens: list[bytes]) -> list[bytes]:
    """Header lines to pass on: minus hop-by-hop fields, fields named in Connection, and the ones we set."""
    drop_named = set(connection_tokens) if connection_tokens else None
    out: list[bytes] = []
    for name, value in headers:
        lname = name.lower()
        if lname in HOP_BY_HOP or lname in PROXY_SET or lname == b"content-length":
            continue
        if drop_named is not None and lname in drop_named:
            continue
        out.append(b"%s: %s\r\n" % (name, value))
    return out


def upstream_request_head(head: RequestHead, ctx: ForwardingContext) -> bytes:
    lines = [b"%s %s HTTP/1.1\r\n" % (head.method, head.target)]
    lines.extend(_strip(head.headers, head.connection_tokens))
    via = b"1.0 " + ctx.via[4:] if head.version == b"1.0" else ctx.via
    incoming_via = [v for n, v in head.headers if n.lower() == b"via"]
    lines.append(b"Via: %s\r\n" % b", ".join([*incoming_via, via]))
    if ctx.peer_trusted and head.forwarded_for:
        xff = b", ".join([*head.forwarded_for, ctx.peer_ip.encode()])
    else:
        xff = ctx.client_ip.encode()
    lines.append(b"X-Forwarded-For: %s\r\n" % xff)
    lines.append(b"X-Forwarded-Proto: %s\r\n" % ctx.scheme)
    if head.host:
        lines.append(b"X-Forwarded-Host: %s\r\n" % head.host)
        lines.append(
            b'Forwarded: for=%s;proto=%s;host="%s"\r\n'
            % (_forwarded_node(ctx.client_ip), ctx.scheme, head.host)
        )
    else:
        lines.append(b"Forwarded: for=%s;proto=%s\r\n" % (_forwarded_node(ctx.client_ip), ctx.scheme))
    if head.upgrade is not None:
        lines.append(b"Connection: Upgrade\r\nUpgrade: %s\r\n" % head.upgrade)
    elif head.chunked:
        lines.append(b"Transfer-Encoding: chunked\r\n")
    elif head.content_length is not None:
        lines.append(b"Content-Length: %d\r\n" % head.content_length)
    lines.append(b"\r\n")
    return b"".join(lines)


@dataclass(slots=True)
class ResponseFraming:
    """How the body of a response is delimited towards the client."""

    content_length: int | None  # pass the origin's length through
    chunked: bool  # re-chunk (origin sent chunked, or close-delimited to an HTTP/1.1 client)
    no_body: bool  # HEAD, 1xx, 204, 304
    close_delimited: bool = False  # the origin ends the body by closing the connection


def client_response_head(
    status: int,
    headers: list[tuple[bytes, bytes]],
    framing: ResponseFraming,
    *,
    keep_alive: bool,
    client_version: bytes,
    via: bytes,
    upgrade: bytes | None = None,
) -> bytes:
    connection_tokens: list[bytes] = []
    incoming_via: list[bytes] = []
    for name, value in headers:
        lname = name.lower()
        if lname == b"connection":
            connection_tokens.extend(t.strip(b" \t").lower() for t in value.split(b","))
        elif lname == b"via":
            incoming_via.append(value)
    lines = [status_line(status)]
    lines.extend(_strip(headers, connection_tokens))
    lines.append(b"Via: %s\r\n" % b", ".join([*incoming_via, via]))
    if upgrade is not None:
        lines.append(b"Connection: Upgrade\r\nUpgrade: %s\r\n" % upgrade)
    else:
        if framing.content_length is not None and not framing.chunked:
            lines.append(b"Content-Length: %d\r\n" % framing.content_length)
        elif framing.chunked and not framing.no_body:
            lines.append(b"Transfer-Encoding: chunked\r\n")
        if not keep_alive:
            lines.append(b"Connection: close\r\n")
        elif client_version == b"1.0":
            lines.append(b"Connection: keep-alive\r\n")
    lines.append(b"\r\n")
    return b"".join(lines)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def last_chunk(trailers: list[tuple[bytes, bytes]]) -> bytes:
    return b"0\r\n" + b"".join(b"%s: %s\r\n" % (n, v) for n, v in trailers) + b"\r\n"
