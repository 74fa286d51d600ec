"""Which requests the cache may answer, and the key they are answered under.

A request is someone's own, and bypasses the cache, when it carries Authorization or a cookie the operator
names as a session cookie; other cookies (analytics, consent banners) neither bypass nor split the key
unless named in `key_cookies`. The primary key is scheme + host + path + query (so an http:// redirect to
https:// is never replayed to https:// requests); the response's Vary adds a secondary key (store.py).

Some requests may be answered from a stored copy but must not lead a shared origin fetch, because what the
origin would answer them is not what the others asked for: conditional requests (a 304), Range requests
(a 206) and `Cache-Control: no-store` ones (whose response must not be stored). They still follow a fetch
already under way, and are served the full stored response: RFC 9110 lets a server ignore Range and
conditions. Request `no-cache` / `max-age=0` is reported as `revalidate`; the cache honours it only when
the operator allows it and the origin is not overloaded (see CacheConfig.honour_client_no_cache).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from shieldwall.cache.config import CacheConfig
from shieldwall.cache.directives import parse_directives
from shieldwall.http1.fields import comma_tokens
from shieldwall.http1.request import RequestHead

SecondaryKey = tuple[bytes | None, ...]


class Bypass(StrEnum):
    """Why a request does not use the cache (kept for the access log and telemetry)."""

    METHOD = "method"  # not GET or HEAD
    BODY = "body"  # a GET with a body, or a WebSocket upgrade
    ROUTE = "route"  # outside the operator's path prefixes
    AUTHORIZATION = "authorization"
    SESSION_COOKIE = "session_cookie"
    # answered from a stored copy, but on a miss they go to the origin alone:
    CONDITIONAL = "conditional"
    RANGE = "range"
    NO_STORE = "no_store"
    HEAD_MISS = "head_miss"  # a HEAD response has no body to store for GETs
    # the cache's own state:
    UNCACHEABLE = "uncacheable"  # this key's last response could not be stored (recently)
    FOLLOWERS_FULL = "followers_full"
    FLIGHT_OVERDUE = "flight_overdue"  # the fetch to wait on is older than coalesce_timeout


_CACHEABLE_METHODS: frozenset[bytes] = frozenset({b"GET", b"HEAD"})
# The request fields that decide whether and how the cache may answer.
_INTEREST: frozenset[bytes] = frozenset(
    {
        b"authorization",
        b"cookie",
        b"cache-control",
        b"pragma",
        b"range",
        b"if-match",
        b"if-none-match",
        b"if-modified-since",
        b"if-unmodified-since",
        b"if-range",
    }
)


@dataclass(frozen=True, slots=True)
class KeyRules:
    """CacheConfig's request-side settings in the shape the per-request code wants (built once)."""

    path_prefixes: tuple[bytes, ...]
    all_paths: bool
    session_names: frozenset[bytes]
    session_prefixes: tuple[bytes, ...]
    key_cookies: frozenset[bytes]
    sort_query: bool

    @classmethod
    def from_config(cls, config: CacheConfig) -> KeyRules:
        names = [name.lower() for name in config.session_cookies]
        return cls(
            path_prefixes=config.path_prefixes,
            all_paths=b"/" in config.path_prefixes,
            session_names=frozenset(name for name in names if not name.endswith(b"*")),
            session_prefixes=tuple(name[:-1] for name in names if name.endswith(b"*")),
            key_cookies=frozenset(name.lower() for name in config.key_cookies),
            sort_query=config.sort_query,
        )


@dataclass(slots=True)  # not frozen: built per request, and a frozen __init__ costs ~0.4 µs more
class CacheRequest:
    """A request the cache may answer."""

    primary: bytes
    head_only: bool  # HEAD: served from a GET's entry, never leads a fetch
    solo: Bypass | None  # CONDITIONAL, RANGE or NO_STORE: served from the cache, but never leads a fetch
    revalidate: bool  # the client sent no-cache or max-age=0


def classify_request(head: RequestHead, scheme: bytes, rules: KeyRules) -> CacheRequest | Bypass:
    method = head.method
    if method not in _CACHEABLE_METHODS:
        return Bypass.METHOD
    if head.has_body or head.upgrade is not None:
        return Bypass.BODY
    target = head.target
    if not rules.all_paths and not target.startswith(rules.path_prefixes):
        return Bypass.ROUTE
    solo: Bypass | None = None
    cache_control: list[bytes] = []
    pragma_no_cache = False
    cookies: list[bytes] = []
    for name, value in head.headers:
        lname = name.lower()
        if lname not in _INTEREST:
            continue
        if lname == b"authorization":
            return Bypass.AUTHORIZATION
        if lname == b"cookie":
            for part in value.split(b";"):
                cookie_name, _, cookie_value = part.strip(b" \t").partition(b"=")
                lower = cookie_name.lower()
                if lower in rules.session_names or lower.startswith(rules.session_prefixes):
                    return Bypass.SESSION_COOKIE
                if lower in rules.key_cookies:
                    cookies.append(lower + b"=" + cookie_value)
        elif lname == b"cache-control":
            cache_control.append(value)
        elif lname == b"pragma":
            pragma_no_cache = pragma_no_cache or b"no-cache" in comma_tokens(value)
        elif lname == b"range":
            solo = Bypass.RANGE
        elif solo is None:
            solo = Bypass.CONDITIONAL
    revalidate = False
    if cache_control:
        # A malformed request Cache-Control is ignored rather than obeyed: it must not be a way around.
        directives = parse_directives(cache_control)
        if directives is not None:
            if b"no-store" in directives:
                solo = Bypass.NO_STORE
            revalidate = b"no-cache" in directives or directives.seconds(b"max-age") == 0
    else:
        revalidate = pragma_no_cache  # RFC 9111 5.4: Pragma counts only without Cache-Control
    if rules.sort_query and b"?" in target:
        path, _, query = target.partition(b"?")
        target = path + b"?" + b"&".join(sorted(query.split(b"&")))
    primary = b"%s://%s%s" % (scheme, head.host.lower(), target)
    if cookies:
        primary += b"\x00" + b"; ".join(sorted(cookies))  # NUL cannot occur in a target
    return CacheRequest(primary, method == b"HEAD", solo, revalidate)


def secondary_key(vary: tuple[bytes, ...], headers: Sequence[tuple[bytes, bytes]]) -> SecondaryKey:
    """The request's values of the fields a response varies on (None where a field is absent)."""
    if not vary:
        return ()
    found: dict[bytes, list[bytes]] = {}
    for name, value in headers:
        lname = name.lower()
        if lname in vary:
            found.setdefault(lname, []).append(value.strip(b" \t"))
    return tuple(b", ".join(found[name]) if name in found else None for name in vary)
