"""The feature vector of one sampled request: the handful of facts an attack signature is made of.

A flood is sent by one tool (or one botnet build), so its requests share values a crowd of real visitors
does not: one path, one user agent, one query shape, one order of header names. The signature miner
(`signatures.py`) compares these values between a peacetime sample and an attack sample. Each value is a
short `str` (bytes decoded as Latin-1, which is lossless and never fails) so that values can be compared,
hashed, logged and shown to an operator as they are.

Values are bounded (paths, user agents and query shapes are truncated) so that a sample of vectors has a
bounded size whatever a client sends.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Final

from shieldwall.policy.decision import RequestView
from shieldwall.policy.fingerprint import header_fingerprint
from shieldwall.policy.paths import normalise_path

MAX_PATH: Final = 256
MAX_USER_AGENT: Final = 128
MAX_LANGUAGE: Final = 16
MAX_QUERY_PARAMS: Final = 16  # more parameters than this are summarised as "&+more"
MAX_PARAM_NAME: Final = 32
MIN_HEX_LENGTH: Final = 8  # "cafe" and "bad" are words; a hex token worth the name is longer


@dataclass(frozen=True, slots=True)
class Features:
    method: str  # "GET"
    host: str  # Host without the port, lower-case (one shield often fronts several sites)
    path: str  # normalised as the policy engine matches it, at most MAX_PATH bytes
    query_shape: str  # see query_shape(); "" without a query
    user_agent: str  # at most MAX_USER_AGENT bytes; "" when absent
    header_order: str  # see _VOLATILE; "9f2c01ab", or "9f2c01ab+cr" with Cookie and Referer
    accept_language: str  # first language tag, lower-case: "en-us"; "" when absent
    prefix: str  # the client's /24 or /64, "203.0.113.0/24"


FEATURE_NAMES: Final = tuple(field.name for field in fields(Features))
"""The fields of `Features`, in the order a signature lists its conditions."""


def features_of(view: RequestView) -> Features:
    """The feature vector of one request: one pass over the headers and one short hash. About 5 µs
    (Python 3.11, the 2-core dev machine, a browser request with 13 headers; 1.5 µs more with a query of two
    parameters), so it is meant for sampled requests, not every request."""
    user_agent = view.header(b"user-agent") or b""
    language = view.header(b"accept-language") or b""
    return Features(  # positional: ~0.3 µs cheaper than keywords for a frozen dataclass
        view.method.decode("latin-1"),
        view.host.decode("latin-1"),
        normalise_path(view.path)[:MAX_PATH].decode("latin-1"),
        query_shape(view.query),
        user_agent[:MAX_USER_AGENT].decode("latin-1"),
        header_fingerprint(view.headers),
        first_language(language),
        view.prefix,
    )


def first_language(accept_language: bytes) -> str:
    """b"en-US,en;q=0.9" → "en-us"; b"" → ""."""
    tag = accept_language.partition(b",")[0].partition(b";")[0].strip()
    return tag[:MAX_LANGUAGE].lower().decode("latin-1")


def query_shape(query: bytes) -> str:
    """The query with its values replaced by a type class and a length bucket, parameters sorted by name.

    b"q=shoes&page=2" → "page=num1&q=alpha8". A cache-busting flood (b"q=k3J9x0aQ2mZ1") has a shape
    real searches rarely have ("q=alnum16"), and the same shape on every request although every query
    differs. Classes: empty, num (digits), hex (hex digits, at least MIN_HEX_LENGTH long and not all
    digits), alpha (letters), alnum (letters and digits), other (anything else, e.g. "red+shoes" or
    escapes). The length bucket is the next power of two: 1, 2, 4, 8, 16...
    A parameter without "=" keeps its bare name. A name that does not look like a program's identifier
    (one made of letters, "_", "-", ".", "[", "]" with at most two trailing digits, as "utm_source",
    "filter[color]" or "item2") is itself classed, prefixed with "~" ("~hex16=empty"), so that random
    names ("?8f3a9c01d2e4b5a6") also give one shape."""
    if not query:
        return ""
    params = query.split(b"&", MAX_QUERY_PARAMS)
    more = len(params) > MAX_QUERY_PARAMS
    if more:
        params.pop()
    shapes = []
    for param in params:
        name, equals, value = param.partition(b"=")
        shown = _name_shape(name)
        shapes.append(shown + "=" + _value_class(value) if equals else shown)
    shapes.sort()
    return "&".join(shapes) + ("&+more" if more else "")


_HEX_DIGITS: Final = b"0123456789abcdefABCDEF"
_NAME_CHARS: Final = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_-.[]"
_DIGITS: Final = b"0123456789"


def _name_shape(name: bytes) -> str:
    stem = name.rstrip(_DIGITS)
    if stem and len(name) <= MAX_PARAM_NAME and len(name) - len(stem) <= 2 and not stem.strip(_NAME_CHARS):
        return name.decode("latin-1")
    return "~" + _value_class(name)


def _value_class(value: bytes) -> str:
    if not value:
        return "empty"
    bucket = 1 << (len(value) - 1).bit_length()
    if value.isdigit():
        kind = "num"
    elif len(value) >= MIN_HEX_LENGTH and not value.strip(_HEX_DIGITS):
        kind = "hex"
    elif value.isalpha():
        kind = "alpha"
    elif value.isalnum():
        kind = "alnum"
    else:
        kind = "other"
    return f"{kind}{bucket}"
