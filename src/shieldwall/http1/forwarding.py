"""Rebuilding message heads for the next hop: hop-by-hop fields out, forwarding fields in.

The request head the origin receives is serialised from validated fields; the client's raw bytes are never
relayed, so a parser disagreement downstream of us has nothing ambiguous to disagree about.
"""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus

from shieldwall.http1.fields import HOP_BY_HOP, comma_tokens
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


def upstream_request_head(head: RequestHead, ctx: ForwardingContext) -> bytes:
    lines = [b"%s %s HTTP/1.1\r\n" % (head.method, head.target), *head.forward_lines]
    via = b"1.0 " + ctx.via[4:] if head.version == b"1.0" else ctx.via
    lines.append(b"Via: %s\r\n" % b", ".join([*head.via, via]) if head.via else b"Via: %s\r\n" % via)
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


class InvalidResponse(Exception):
    """The origin's response cannot be passed on safely (502)."""


# Response fields the shield handles itself; all others go to the client as they came.
RESPONSE_HANDLED: frozenset[bytes] = HOP_BY_HOP | frozenset({b"content-length", b"via"})


@dataclass(slots=True)
class ResponseFields:
    """A response head as the origin sent it, sorted once, field by field, as llhttp reports it
    (the data plane's on_header callback fills it; a method call per field costs too much there)."""

    lines: list[bytes]  # end-to-end field lines, ready to send
    handled: list[tuple[bytes, bytes]]  # (lower-cased name, value) of RESPONSE_HANDLED fields


def response_framing(
    status: int, fields: ResponseFields, method: bytes, client_version: bytes
) -> ResponseFraming:
    content_length: int | None = None
    te: list[bytes] = []
    for lname, value in fields.handled:
        if lname == b"content-length":
            if content_length is not None or not value.strip().isdigit():
                raise InvalidResponse("invalid or repeated Content-Length from the origin")
            content_length = int(value)
        elif lname == b"transfer-encoding":
            te.append(value.strip().lower())
    no_body = method == b"HEAD" or status in (204, 304) or 100 <= status < 200
    if te:
        if content_length is not None:
            raise InvalidResponse("origin sent both Content-Length and Transfer-Encoding")
        if te != [b"chunked"]:
            # llhttp removes only the chunked coding: a `gzip, chunked` body would reach the client
            # still gzipped with nothing saying so. Origins practically never send one; refuse it.
            raise InvalidResponse("origin used a transfer coding other than chunked")
        return ResponseFraming(content_length=None, chunked=client_version == b"1.1", no_body=no_body)
    if content_length is not None or no_body:
        return ResponseFraming(content_length=content_length, chunked=False, no_body=no_body)
    # close-delimited: re-chunk for HTTP/1.1 clients; HTTP/1.0 clients get it close-delimited too
    return ResponseFraming(
        content_length=None, chunked=client_version == b"1.1", no_body=False, close_delimited=True
    )


def client_response_head(
    status: int,
    fields: ResponseFields,
    framing: ResponseFraming,
    *,
    keep_alive: bool,
    client_version: bytes,
    via: bytes,
    upgrade: bytes | None = None,
) -> bytes:
    lines = fields.lines
    incoming_via: list[bytes] = []
    for lname, value in fields.handled:
        if lname == b"via":
            incoming_via.append(value)
        elif lname == b"connection":
            named = set(comma_tokens(value)) - HOP_BY_HOP
            if named:  # fields the origin marked hop-by-hop (rare)
                lines = [line for line in lines if line.partition(b":")[0].lower() not in named]
    head = [status_line(status), *lines]
    head.append(b"Via: %s\r\n" % b", ".join([*incoming_via, via]) if incoming_via else b"Via: %s\r\n" % via)
    if upgrade is not None:
        head.append(b"Connection: Upgrade\r\nUpgrade: %s\r\n" % upgrade)
    else:
        if framing.content_length is not None and not framing.chunked:
            head.append(b"Content-Length: %d\r\n" % framing.content_length)
        elif framing.chunked and not framing.no_body:
            head.append(b"Transfer-Encoding: chunked\r\n")
        if not keep_alive:
            head.append(b"Connection: close\r\n")
        elif client_version == b"1.0":
            head.append(b"Connection: keep-alive\r\n")
    head.append(b"\r\n")
    return b"".join(head)


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def last_chunk(trailers: list[tuple[bytes, bytes]]) -> bytes:
    return b"0\r\n" + b"".join(b"%s: %s\r\n" % (n, v) for n, v in trailers) + b"\r\n"
