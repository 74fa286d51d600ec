"""Turning parsed request fields into a validated RequestHead, or an HttpError with the status to send."""

from __future__ import annotations

from dataclasses import dataclass

from shieldwall.core.errors import BadRequest, HttpError
from shieldwall.http1.fields import (
    HOP_BY_HOP,
    PROXY_SET,
    comma_tokens,
    host_is_valid,
    name_is_token,
    target_is_valid,
    value_is_valid,
)

TRAILER_FORBIDDEN: frozenset[bytes] = (
    HOP_BY_HOP
    | PROXY_SET
    | frozenset(
        {
            b"content-length",
            b"host",
            b"authorization",
            b"cookie",
            b"set-cookie",
            b"content-type",
            b"content-encoding",
            b"content-range",
            b"cache-control",
            b"max-forwards",
            b"range",
            b"if-match",
            b"if-none-match",
        }
    )
)
# Fields the origin does not get from the client as they are: hop-by-hop ones, the ones the shield
# sets itself, and framing (re-stated by the shield). Host is forwarded in its place.
NOT_FORWARDED: frozenset[bytes] = HOP_BY_HOP | PROXY_SET | frozenset({b"content-length"})
IDEMPOTENT_METHODS: frozenset[bytes] = frozenset({b"GET", b"HEAD", b"OPTIONS", b"PUT", b"DELETE", b"TRACE"})


@dataclass(slots=True)
class RequestHead:
    method: bytes
    target: bytes  # origin-form (absolute-form is reduced to path + query) or "*"
    version: bytes  # b"1.1" or b"1.0"
    headers: list[tuple[bytes, bytes]]  # as received, names in their original case
    host: bytes
    content_length: int | None
    chunked: bool
    keep_alive: bool
    expect_continue: bool
    upgrade: bytes | None  # b"websocket" when a WebSocket tunnel is asked for
    connection_tokens: list[bytes]
    forwarded_for: list[bytes]
    via: list[bytes]  # incoming Via values, to extend
    forward_lines: list[bytes]  # end-to-end field lines ("Name: value\r\n"), in order, for the origin

    @property
    def has_body(self) -> bool:
        return self.chunked or bool(self.content_length)

    @property
    def idempotent(self) -> bool:
        return self.method in IDEMPOTENT_METHODS and not self.has_body

    def header(self, name: bytes) -> bytes | None:
        """The first value of a header (`name` lower-case; received names are compared lower-cased)."""
        for key, value in self.headers:
            if len(key) == len(name) and key.lower() == name:
                return value
        return None

    def values(self, name: bytes) -> list[bytes]:
        """Every value of a header, in order (`name` lower-case): e.g. the Cookie lines."""
        return [value for key, value in self.headers if len(key) == len(name) and key.lower() == name]


def _absolute_to_origin_form(target: bytes, host: bytes | None) -> tuple[bytes, bytes]:
    """`http://h/a?b` → (`/a?b`, `h`); the authority must agree with Host when both are present."""
    scheme, _, rest = target.partition(b"://")
    if scheme.lower() not in (b"http", b"https") or not rest:
        raise BadRequest("malformed absolute-form request target")
    authority, slash, path = rest.partition(b"/")
    if b"@" in authority or not authority or not host_is_valid(authority):
        raise BadRequest("invalid authority in the request target")
    if host is not None and host.lower() != authority.lower():
        raise BadRequest("the request target's host disagrees with the Host header")
    return slash + path if slash else b"/", authority


def forwardable_trailers(trailers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Trailer fields that may go on: never ones that frame, route or authenticate (RFC 9110 6.5.1)."""
    kept = []
    for name, value in trailers:
        if not name_is_token(name) or not value_is_valid(value):
            raise BadRequest("invalid trailer field")
        if name.lower() not in TRAILER_FORBIDDEN:
            kept.append((name, value))
    return kept


def validate_request_head(
    method: bytes, target: bytes, version: bytes, headers: list[tuple[bytes, bytes]]
) -> RequestHead:
    """Apply RFC 9112's MUSTs that llhttp leaves to us. Raises HttpError."""
    if version not in (b"1.1", b"1.0"):
        raise HttpError(505, "HTTP version not supported")
    if method == b"CONNECT":
        raise HttpError(405, "CONNECT is not proxied")
    host: bytes | None = None
    host_count = 0
    content_length: int | None = None
    te_values: list[bytes] = []
    connection: list[bytes] = []
    expect: bytes | None = None
    upgrade: bytes | None = None
    forwarded_for: list[bytes] = []
    via: list[bytes] = []
    forward: list[bytes] = []
    # One pass: field names and values were already checked against RFC 9110's token and field-value
    # rules by llhttp (pinned by tests/unit/test_client_protocol.py::test_llhttp_refuses_bad_field_bytes).
    for name, value in headers:
        lname = name.lower()
        if lname not in NOT_FORWARDED:
            forward.append(b"%s: %s\r\n" % (name, value))
            if lname == b"host":
                host_count += 1
                host = value
        elif lname == b"content-length":
            if content_length is not None or not value.isdigit():
                raise BadRequest("invalid or repeated Content-Length")
            content_length = int(value)
        elif lname == b"transfer-encoding":
            te_values.append(value)
        elif lname == b"connection":
            connection.extend(comma_tokens(value))
        elif lname == b"expect":
            expect = value.strip(b" \t").lower()
        elif lname == b"upgrade":
            upgrade = value.strip(b" \t").lower()
        elif lname == b"x-forwarded-for":
            forwarded_for.append(value)
        elif lname == b"via":
            via.append(value)
    if connection and not HOP_BY_HOP.issuperset(connection):
        named = set(connection)  # fields the client marked hop-by-hop with Connection (rare)
        forward = [line for line in forward if line.partition(b":")[0].lower() not in named]

    if host_count > 1:
        raise BadRequest("more than one Host header")
    if host is not None and not host_is_valid(host):
        raise BadRequest("invalid Host header")
    if not target_is_valid(target):
        raise BadRequest("invalid byte in the request target")
    if target[:1] == b"/":
        pass
    elif target == b"*":
        if method != b"OPTIONS":
            raise BadRequest("asterisk-form is only allowed with OPTIONS")
    else:
        target, authority = _absolute_to_origin_form(target, host)
        if host is None and version == b"1.0":
            host = authority
    if host is None:
        if version == b"1.1":
            raise BadRequest("missing Host header")  # RFC 9112 3.2: even with an absolute-form target
        host = b""

    chunked = False
    if te_values:
        if version == b"1.0":
            raise BadRequest("Transfer-Encoding in an HTTP/1.0 request")
        if content_length is not None:
            raise BadRequest("both Content-Length and Transfer-Encoding")
        # Strict: exactly one field, exactly `chunked`. Lists (`gzip, chunked`), empty elements
        # (`,chunked`) and look-alikes are where front and back ends disagree, so they are refused.
        if len(te_values) != 1 or te_values[0].strip(b" \t").lower() != b"chunked":
            raise BadRequest("unsupported Transfer-Encoding (only a single 'chunked' is accepted)")
        chunked = True

    if expect is not None and expect != b"100-continue":
        raise HttpError(417, "unsupported expectation")
    if version == b"1.1":
        keep_alive = b"close" not in connection
    else:
        keep_alive = b"keep-alive" in connection and b"close" not in connection
    tunnel = None
    if upgrade == b"websocket" and b"upgrade" in connection and method == b"GET":
        if content_length or chunked:
            raise BadRequest("a WebSocket upgrade request carries no body")
        tunnel = upgrade
    return RequestHead(
        method=method,
        target=target,
        version=version,
        headers=headers,
        host=host,
        content_length=content_length,
        chunked=chunked,
        keep_alive=keep_alive,
        expect_continue=expect is not None and version == b"1.1",  # never 100 to HTTP/1.0 (RFC 9110 10.1.1)
        upgrade=tunnel,
        connection_tokens=connection,
        forwarded_for=forwarded_for,
        via=via,
        forward_lines=forward,
    )
