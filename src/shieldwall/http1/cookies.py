"""Reading cookies out of raw header values (RFC 6265 section 4.2.1: `name=value` pairs separated by
"; "). Bytes in, bytes out: values are compared, never decoded."""

from __future__ import annotations

from collections.abc import Iterator


def cookie_pairs(header_value: bytes) -> Iterator[tuple[bytes, bytes]]:
    """(name, value) for each pair in one Cookie header value, in order; a part without "=" is a
    cookie with an empty name (as browsers send `Cookie: token`)."""
    for part in header_value.split(b";"):
        name, sep, value = part.strip(b" \t").partition(b"=")
        if sep:
            yield name, value
        elif name:
            yield b"", name


def set_cookie_pair(header_value: bytes) -> tuple[bytes, bytes, bytes]:
    """(name, value, attributes) of one Set-Cookie header value; attributes lower-cased, for checks
    such as max-age=0 (a deletion)."""
    pair, _, attributes = header_value.partition(b";")
    name, _, value = pair.partition(b"=")
    return name.strip(b" \t"), value.strip(b" \t"), attributes.lower()
