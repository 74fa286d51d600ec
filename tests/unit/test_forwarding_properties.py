"""Whatever bytes a client sends, the shield either refuses them or forwards one unambiguous request.

The request the origin receives is re-parsed with a second, independent parser (httptools in a fresh
state): it must be exactly one complete message with the same method, target, host and end-to-end
header fields, no hop-by-hop field, and framing the shield chose itself.
"""

from __future__ import annotations

import contextlib

import httptools
from hypothesis import event, given, settings
from hypothesis import strategies as st
from rig import Rig

from shieldwall.http1.fields import HOP_BY_HOP, PROXY_SET

TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
names = st.one_of(
    st.text(TOKEN_CHARS, min_size=1, max_size=12),
    st.sampled_from(
        [
            "Host",
            "Content-Length",
            "Transfer-Encoding",
            "Connection",
            "TE",
            "Upgrade",
            "Expect",
            "Keep-Alive",
            "X-Forwarded-For",
            "Via",
            "Forwarded",
            "Trailer",
            "Proxy-Connection",
        ]
    ),
    st.binary(min_size=1, max_size=6).map(lambda b: b.decode("latin-1")),
).filter(lambda n: not {"\r", "\n", ":"} & set(n))  # these would change the message's structure
values = st.one_of(
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20),
    st.sampled_from(
        ["chunked", "close", "keep-alive", "0", "5", "x", " chunked", "chunked, x", "100-continue"]
    ),
    st.binary(max_size=8).map(lambda b: b.decode("latin-1")),
).filter(lambda v: "\r" not in v and "\n" not in v)  # CR/LF would change the message's structure


class Collector:
    def __init__(self) -> None:
        self.headers: list[tuple[bytes, bytes]] = []
        self.url = b""
        self.messages = 0
        self.body = b""

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_body(self, body: bytes) -> None:
        self.body += body

    def on_message_complete(self) -> None:
        self.messages += 1


@st.composite
def header_lists(draw: st.DrawFn) -> list[tuple[str, str]]:
    """Random fields, and often a Connection field naming some of them (they must not be forwarded)."""
    fields = draw(st.lists(st.tuples(names, values), max_size=6))
    if fields and draw(st.booleans()):
        named = draw(st.lists(st.sampled_from([n for n, _ in fields]), min_size=1, max_size=3))
        fields.append(("Connection", ", ".join(named)))
    return fields


@settings(max_examples=400, deadline=None)
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "HEAD", "OPTIONS"]),
    target=st.sampled_from(["/", "/a?b=1", "http://h/x", "*"]),
    headers=header_lists(),
    body=st.binary(max_size=12),
)
def test_forwarded_request_is_one_unambiguous_message(
    method: str, target: str, headers: list[tuple[str, str]], body: bytes
) -> None:
    raw = (
        f"{method} {target} HTTP/1.1\r\nHost: h\r\n".encode()
        + b"".join(f"{n}: {v}\r\n".encode("latin-1") for n, v in headers)
        + b"\r\n"
        + body
    )
    rig = Rig()
    try:
        rig.client.data_received(raw)
        if not rig.upstreams:
            event("refused")
            return  # refused or waiting for more bytes: nothing reached the origin
        event("forwarded")
        sent = rig.up.take()
        seen = Collector()
        parser = httptools.HttpRequestParser(seen)
        with contextlib.suppress(httptools.HttpParserUpgrade):
            parser.feed_data(sent)
        assert seen.messages <= 1, "one client request never becomes two at the origin"
        assert parser.get_method() == method.encode()
        forwarded = {n.lower() for n, _ in seen.headers}
        assert not (forwarded & (HOP_BY_HOP - {b"transfer-encoding", b"connection", b"upgrade"}))
        assert sum(n.lower() == b"host" for n, _ in seen.headers) == 1
        assert sum(n.lower() in (b"content-length", b"transfer-encoding") for n, _ in seen.headers) <= 1
        client_fields = [
            (n.encode("latin-1").lower(), v.encode("latin-1"))
            for n, v in headers
            if n.lower().encode("latin-1") not in HOP_BY_HOP | PROXY_SET | {b"host", b"content-length"}
        ]
        named_in_connection = {
            t.strip().lower().encode("latin-1")
            for n, v in headers
            if n.lower() == "connection"
            for t in v.split(",")
        }
        expected = [(n, v.strip(b" \t")) for n, v in client_fields if n not in named_in_connection]
        got = [
            (n.lower(), v.strip(b" \t"))  # llhttp keeps trailing OWS; RFC 9110 5.5: not part of the value
            for n, v in seen.headers
            if n.lower()
            not in PROXY_SET
            | {b"host"}
            | {b"content-length", b"transfer-encoding", b"connection", b"upgrade"}
        ]
        assert got == expected
    finally:
        rig.close()
