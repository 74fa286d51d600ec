"""A limit rule's counter: which bucket a request goes in (`per`), and the GCRA that counts each bucket.

The key is computed only for requests that reached the rule and matched it, so the cost of a key
(decoding a header, finding an IPv6 /48) is paid by limited routes alone. Every table here is bounded:
the GCRA by `tracked_keys`, the /48 cache by a fixed size, and a header value is never kept whole when
it is long (a flood of 8 KB API keys would otherwise cost 8 KB of memory per tracked key).

A rule with `scope = "cluster"` also tallies what its GCRA admitted, for the worker's reconciliation with
the rest of the cluster (limiter/cluster_tally.py), which raises the same GCRA to what the cluster's shared
bucket owes: the hot path only counts.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
from collections.abc import Callable
from functools import lru_cache
from operator import attrgetter
from typing import Final

from shieldwall.http1.cookies import cookie_pairs
from shieldwall.limiter.cluster_tally import MAX_TALLIED, ClusterTally
from shieldwall.limiter.concurrency import OpenCounts
from shieldwall.limiter.gcra import Gcra
from shieldwall.policy.decision import RequestView
from shieldwall.policy.fingerprint import header_fingerprint

KeyOf = Callable[[RequestView], str | None]
"""The bucket a request is counted in, or None when the rule does not count it."""

_MAX_KEY_BYTES: Final = 64  # longer header values are keyed by a digest
_PREFIX48_CACHE: Final = 4096
_V6_48_MASK: Final = ((1 << 48) - 1) << 80


class RuleLimiter:
    """Counts the requests a limit rule matched, per bucket; says how long an over-limit client waits."""

    __slots__ = ("gcra", "key_of", "tally")

    def __init__(
        self, rate: float, burst: int, per: str, tracked_keys: int, *, cluster: bool = False
    ) -> None:
        """`cluster`: the rule's scope is the cluster, so what it admits is tallied for the sync."""
        self.gcra = Gcra(rate, burst, tracked_keys)
        self.key_of = key_function(per)
        self.tally = ClusterTally(self.gcra, min(tracked_keys, MAX_TALLIED)) if cluster else None

    def check(self, view: RequestView, now: float) -> int | None:
        """Count the request; None when admitted (or not counted), else the whole seconds to wait (>= 1)."""
        key = self.key_of(view)
        if key is None:
            return None
        verdict = self.gcra.check(key, now)
        if not verdict.allowed:
            return math.ceil(verdict.retry_after)
        if self.tally is not None:
            self.tally.add(key)
        return None


class RuleSlots:
    """A concurrency rule's count of the requests it matched that are being served now, per bucket
    (`per`, as for limits); bounded by what is open, like every OpenCounts."""

    __slots__ = ("counts", "key_of")

    def __init__(self, most: int, per: str) -> None:
        self.counts = OpenCounts(most)
        self.key_of = key_function(per)


def key_function(per: str) -> KeyOf:
    """`per` as the schema validated it (ip, prefix, prefix48, route, fingerprint, header:NAME,
    cookie:NAME) → its key function."""
    if per == "ip":
        return attrgetter("client_ip")
    if per == "prefix":
        return attrgetter("prefix")
    if per == "prefix48":
        return _prefix48
    if per == "route":
        return _route
    if per == "fingerprint":
        return _fingerprint
    kind, _, name = per.partition(":")
    if kind == "header" and name:
        return _HeaderKey(name.lower().encode("ascii"))
    if kind == "cookie" and name:
        return _CookieKey(name.encode("ascii"))
    raise ValueError(f"unknown limit key {per!r}")


def _route(view: RequestView) -> str:
    return ""  # one bucket for every client


def _fingerprint(view: RequestView) -> str:
    """The header-order fingerprint (policy/fingerprint.py): one bucket per client software build, so a
    botnet spread over many addresses that sends one library's headers is counted as one."""
    return header_fingerprint(view.headers)


def _bounded(value: bytes) -> str:
    if len(value) > _MAX_KEY_BYTES:
        return "#" + hashlib.blake2b(value, digest_size=16).hexdigest()
    return value.decode("latin-1")  # every byte maps to one character: distinct values stay distinct


class _HeaderKey:
    """The first value of one header; requests without it are not counted."""

    __slots__ = ("name",)

    def __init__(self, name: bytes) -> None:
        self.name = name

    def __call__(self, view: RequestView) -> str | None:
        value = view.header(self.name)
        return None if value is None else _bounded(value)


class _CookieKey:
    """One cookie's value (the first, in the first Cookie header that has it); requests without it are
    not counted. `cookie:sw_clearance` counts requests per clearance cookie: one solved challenge cannot
    carry a flood."""

    __slots__ = ("name",)

    def __init__(self, name: bytes) -> None:
        self.name = name

    def __call__(self, view: RequestView) -> str | None:
        for header, value in view.headers:
            if header == b"cookie":
                for name, cookie in cookie_pairs(value):
                    if name == self.name:
                        return _bounded(cookie)
        return None


@lru_cache(maxsize=_PREFIX48_CACHE)
def _slash48(prefix64: str) -> str:
    """ "2001:db8:1:2::/64" → "2001:db8:1::/48". Memoised (bounded): many addresses share a /64, and
    parsing IPv6 text costs microseconds."""
    network = int(ipaddress.IPv6Address(prefix64.partition("/")[0])) & _V6_48_MASK
    return f"{ipaddress.IPv6Address(network)}/48"


def _prefix48(view: RequestView) -> str:
    """IPv6 clients by /48 (a typical site allocation); IPv4 clients by their /24 (the view's prefix)."""
    prefix = view.prefix
    return prefix if ":" not in prefix else _slash48(prefix)
