"""Whether a response may be stored, and for how long it is fresh and may then be served stale.

Choices made here, beyond RFC 9111's MUSTs:

- Only the statuses RFC 9110 15.1 calls heuristically cacheable that are worth shielding are stored
  (200 203 204 300 301 308 404 410), and only with explicit freshness, unless the operator sets a
  `default_ttl`.
- `no-cache` (also its field-qualified form) is treated as "not stored": the cache does not revalidate
  with conditional requests, so a stored copy could never be used anyway. `private="..."` likewise.
- A response that sets a cookie is never stored: replaying it would hand one visitor's cookie to others.
- The operator's stale windows extend only responses that did not forbid stale serving: must-revalidate
  and proxy-revalidate forbid it entirely; s-maxage implies proxy-revalidate for a shared cache
  (RFC 9111 5.2.2.10), so with s-maxage only the origin's own stale-while-revalidate / stale-if-error
  (RFC 5861, the more specific statement) count.
- A response fresh for 0 seconds (max-age=0, Expires ≤ Date) is still stored when a stale window applies:
  every request then fetches (coalesced into one fetch), and the copy stands in when the origin fails.
- Expires without a usable Date is not explicit freshness: comparing it with the origin's clock needs the
  origin's Date, and the shield's monotonic clock is not comparable with either.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from shieldwall.cache.config import CacheConfig
from shieldwall.cache.directives import delta_seconds, http_date, parse_directives
from shieldwall.http1.fields import comma_tokens

HEURISTIC_STATUSES: frozenset[int] = frozenset({200, 203, 204, 300, 301, 308, 404, 410})
# RFC 5861 4: the responses that count as an error for stale-if-error, like a failed connection.
ORIGIN_ERROR_STATUSES: frozenset[int] = frozenset({500, 502, 503, 504})
_NEVER_STORED: tuple[bytes, ...] = (b"private", b"no-store", b"no-cache")


@dataclass(frozen=True, slots=True)
class Freshness:
    lifetime: float  # seconds fresh, counted from age 0
    stale_while_revalidate: float  # seconds past lifetime: serve stale while one fetch refreshes
    stale_if_error: float  # seconds past lifetime: serve stale when the origin fails or is overloaded
    initial_age: float  # the response's Age field: how old it already was when it arrived
    vary: tuple[bytes, ...]  # lower-cased request field names, sorted, deduplicated


def is_origin_error(status: int) -> bool:
    """A response the data plane treats like a failed fetch (Cache.fail), so a stale copy can stand in."""
    return status in ORIGIN_ERROR_STATUSES


def vary_names(values: Iterable[bytes]) -> tuple[bytes, ...] | None:
    """The request fields a response varies on; None for `Vary: *` (it varies on things we cannot see)."""
    names: set[bytes] = set()
    for value in values:
        names.update(comma_tokens(value))
    return None if b"*" in names else tuple(sorted(names))


def freshness(status: int, fields: Sequence[tuple[bytes, bytes]], config: CacheConfig) -> Freshness | None:
    """How a response may be cached; None when it must not be stored. `fields` are (name, value) pairs,
    names in any case."""
    if status not in HEURISTIC_STATUSES:
        return None
    cache_control: list[bytes] = []
    expires: list[bytes] = []
    dates: list[bytes] = []
    vary: list[bytes] = []
    age: int | None = None
    for name, value in fields:
        lname = name.lower()
        if lname == b"cache-control":
            cache_control.append(value)
        elif lname == b"set-cookie":
            return None
        elif lname == b"expires":
            expires.append(value)
        elif lname == b"date":
            dates.append(value)
        elif lname == b"vary":
            vary.append(value)
        elif lname == b"age" and age is None:
            age = delta_seconds(value.strip(b" \t"))
    directives = parse_directives(cache_control)
    if directives is None or any(name in directives for name in _NEVER_STORED):
        return None
    varies = vary_names(vary)
    if varies is None:
        return None

    lifetime: float | None = None
    shared_max_age = b"s-maxage" in directives
    for name in (b"s-maxage", b"max-age"):
        if name in directives:
            seconds = directives.seconds(name)
            if seconds is None:
                return None  # malformed or contradictory: do not guess
            lifetime = float(seconds)
            break
    else:
        if expires:
            expiry = http_date(expires[0]) if len(expires) == 1 else None
            date = http_date(dates[0]) if len(dates) == 1 else None
            if expiry is None:
                lifetime = 0.0  # an invalid Expires means "already expired" (RFC 9111 5.3)
            elif date is not None:
                lifetime = max(0.0, expiry - date)
    if lifetime is None:
        if config.default_ttl <= 0:
            return None
        lifetime = config.default_ttl

    revalidate_first = b"must-revalidate" in directives or b"proxy-revalidate" in directives
    origin_swr = float(directives.seconds(b"stale-while-revalidate") or 0)
    origin_sie = float(directives.seconds(b"stale-if-error") or 0)
    if revalidate_first:
        swr = sie = 0.0
    elif shared_max_age:
        swr, sie = origin_swr, origin_sie
    else:
        swr = max(origin_swr, config.stale_while_revalidate)
        sie = max(origin_sie, config.stale_if_error)
    if lifetime <= 0 and swr <= 0 and sie <= 0:
        return None
    return Freshness(lifetime, swr, sie, float(age or 0), varies)


def field_pairs(lines: Iterable[bytes]) -> list[tuple[bytes, bytes]]:
    """`b"Name: value\\r\\n"` lines (the data plane's ResponseFields.lines) as (name, value) pairs."""
    pairs = []
    for line in lines:
        name, _, value = line.partition(b":")
        pairs.append((name, value.strip(b" \t\r\n")))
    return pairs
