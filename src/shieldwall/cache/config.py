"""What the operator decides about the cache: its bounds, how long stale copies may stand in for the origin,
and which requests are someone's own (never shared).

A plain frozen dataclass so that the sans-io package does not depend on the configuration loader; the
`[cache]` section of the TOML schema is mapped onto it by the data plane.
"""

from __future__ import annotations

from dataclasses import dataclass

# Cookies that mean "this visitor is signed in": a request carrying one is never answered from the cache.
# Bypassing is the safe direction, so the list is generous; a trailing "*" makes a name a prefix.
DEFAULT_SESSION_COOKIES: tuple[bytes, ...] = (
    b"sessionid",
    b"session",
    b"PHPSESSID",
    b"JSESSIONID",
    b"ASP.NET_SessionId",
    b"connect.sid",
    b"laravel_session",
    b"_session_id",
    b"wordpress_logged_in_*",
    b"wordpress_sec_*",
    b"SESS*",
    b"SSESS*",
)


@dataclass(frozen=True, slots=True)
class CacheConfig:
    max_bytes: int = 64 * 1024 * 1024
    """All entries together (bodies, fields, keys and a fixed per-entry overhead) never exceed this."""
    max_object_bytes: int = 1024 * 1024
    """One entry at most; a bigger response is passed through and not stored."""
    default_ttl: float = 0.0
    """Freshness for a cacheable-by-status response that states none; 0 = such responses are not stored."""
    stale_if_error: float = 300.0
    """Seconds past freshness a copy may be served while the origin fails or is overloaded."""
    stale_while_revalidate: float = 0.0
    """Seconds past freshness a copy may be served while one background fetch refreshes it."""
    session_cookies: tuple[bytes, ...] = DEFAULT_SESSION_COOKIES
    """Cookie names (case-insensitive, "*" suffix = prefix) that make a request bypass the cache."""
    key_cookies: tuple[bytes, ...] = ()
    """Cookie names whose values become part of the key (e.g. a language choice); others are ignored."""
    sort_query: bool = False
    """Key `?b=1&a=2` and `?a=2&b=1` alike. Off by default: an origin may give the order meaning."""
    honour_client_no_cache: bool = False
    """Let a client's `no-cache` / `max-age=0` force a fetch (never while the origin is overloaded).
    Off by default: otherwise a flood that sends `Cache-Control: no-cache` walks straight past the shield."""
    path_prefixes: tuple[bytes, ...] = (b"/",)
    """Only paths starting with one of these are looked up; the origin's Cache-Control still decides."""
    max_followers_per_key: int = 1000
    """Requests waiting on one origin fetch; more go to the origin on their own (BYPASS)."""
    max_followers: int = 10_000
    """Requests waiting on origin fetches, all keys together."""
    coalesce_timeout: float = 30.0
    """A fetch older than this takes no new followers (the data plane should give up on older waits)."""
    uncacheable_ttl: float = 10.0
    """After a key's response proved uncacheable, its requests skip coalescing for this long."""

    def __post_init__(self) -> None:
        if self.max_object_bytes <= 0 or self.max_bytes < self.max_object_bytes:
            raise ValueError("max_object_bytes must be positive and at most max_bytes")
        for name in ("default_ttl", "stale_if_error", "stale_while_revalidate", "uncacheable_ttl"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.coalesce_timeout <= 0 or self.max_followers_per_key < 0 or self.max_followers < 0:
            raise ValueError("coalesce_timeout must be positive and follower bounds not negative")
