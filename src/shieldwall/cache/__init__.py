"""The cache as a shield (sans-io): anonymous GETs of cacheable routes answered from memory, one origin fetch
for many identical misses, and stale copies standing in while the origin fails or is overloaded.

The data plane's side, per request (`cache = Cache[Exchange](config)`, one per worker):

    result = cache.lookup(head, scheme, now, exchange)
    FRESH / STALE        replay result.entry (status, entry.head_lines(now), entry.body; no body for HEAD)
    STALE_REVALIDATE     replay result.entry, and fetch in the background as the leader of result.flight
                         (or, without background fetches: treat it as MISS; others get STALE meanwhile)
    MISS                 fetch; this exchange leads result.flight
    MISS_COALESCED       wait; finish/fail/abandon of result.flight hands the exchange back
                         (cache.leave(result.flight, exchange) if its client leaves or it waits too long)
    BYPASS               to the origin as usual

and per leader fetch: `builder = cache.begin(flight, status, fields, now, content_length)` at the response
head; `builder.feed(chunk)` for each body chunk while it answers True; then exactly one of
`cache.finish(flight, builder_or_None, now)`, `cache.fail(flight, now)` (connection failure, timeout,
invalid response, or a 500/502/503/504 head: response.is_origin_error) or `cache.abandon(flight)`.
Each returns an Outcome: waiters to `serve` with its entry, waiters to `release`.
"""

from shieldwall.cache.coalescing import Flight
from shieldwall.cache.config import DEFAULT_SESSION_COOKIES, CacheConfig
from shieldwall.cache.entry import Builder, Entry
from shieldwall.cache.request import Bypass
from shieldwall.cache.response import Freshness, field_pairs, freshness, is_origin_error
from shieldwall.cache.shield import Cache, CacheCounters, Lookup, LookupKind, Outcome

__all__ = [
    "DEFAULT_SESSION_COOKIES",
    "Builder",
    "Bypass",
    "Cache",
    "CacheConfig",
    "CacheCounters",
    "Entry",
    "Flight",
    "Freshness",
    "Lookup",
    "LookupKind",
    "Outcome",
    "field_pairs",
    "freshness",
    "is_origin_error",
]
