"""Field-level rules of RFC 9110/9112 that a strict front proxy enforces."""

from __future__ import annotations

import re

# Hop-by-hop fields (RFC 9110 7.6.1) plus the non-standard ones proxies must not pass on.
HOP_BY_HOP: frozenset[bytes] = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)

# Fields the shield sets itself on the way to the origin; the client's copies are replaced.
PROXY_SET: frozenset[bytes] = frozenset(
    {b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"forwarded", b"via", b"expect"}
)

# field-value = *( VCHAR / obs-text / SP / HTAB ); anything else (CTLs, NUL, DEL) is refused.
_BAD_VALUE_BYTE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# token = 1*tchar
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# Host = uri-host [ ":" port ]; uri-host = IP-literal / IPv4address / reg-name (RFC 3986 3.2.2)
_HOST = re.compile(rb"(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~!$&'()*+,;=%]+)(?::[0-9]{0,5})?")


# request-target: no CTLs, SP, DEL or non-ASCII, and no fragment (a client never sends '#', RFC 9112 3.2)
_BAD_TARGET_BYTE = re.compile(rb"[\x00-\x20#\x7f-\xff]")


def target_is_valid(target: bytes) -> bool:
    return _BAD_TARGET_BYTE.search(target) is None


def value_is_valid(value: bytes) -> bool:
    return _BAD_VALUE_BYTE.search(value) is None


def name_is_token(name: bytes) -> bool:
    return _TOKEN.fullmatch(name) is not None


def host_is_valid(host: bytes) -> bool:
    return _HOST.fullmatch(host) is not None


def comma_tokens(value: bytes) -> list[bytes]:
    """The lower-cased elements of a comma-separated list field; empty elements dropped (RFC 9110 5.6.1)."""
    return [item.strip(b" \t").lower() for item in value.split(b",") if item.strip(b" \t")]
