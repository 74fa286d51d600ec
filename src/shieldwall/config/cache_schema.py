"""`[cache]`: the cache as a shield (shieldwall.cache). Off by default: caching is a decision about the
site's pages that only its operator can make, even though the origin's Cache-Control still decides what
may be stored."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from shieldwall.cache.config import DEFAULT_SESSION_COOKIES
from shieldwall.config.admission_schema import CookieName, PathPrefix
from shieldwall.config.validators import NonNegativeInt, PositiveFloat, PositiveInt, Section, StrictBool

NonNegativeFloat = Annotated[float, Field(ge=0, strict=True)]


class Cache(Section):
    """Anonymous GETs of cacheable routes answered from memory (what the origin's Cache-Control allows),
    one origin fetch for many identical misses, and stale copies while the origin fails or is saturated."""

    enabled: StrictBool = False
    max_bytes: PositiveInt = Field(default=64 * 1024 * 1024, description="bytes per worker, all entries")
    max_object_bytes: PositiveInt = Field(default=1024 * 1024, description="bytes of one entry at most")
    default_ttl: NonNegativeFloat = Field(
        default=0.0, description="seconds fresh for a response that states no freshness; 0 = not stored"
    )
    stale_if_error: NonNegativeFloat = 300.0
    stale_while_revalidate: NonNegativeFloat = 0.0
    session_cookies: tuple[CookieName, ...] = Field(
        default=tuple(name.decode() for name in DEFAULT_SESSION_COOKIES),
        description="cookies that make a request bypass the cache; a trailing * makes a prefix",
    )
    key_cookies: tuple[CookieName, ...] = ()
    sort_query: StrictBool = False
    honour_client_no_cache: StrictBool = False
    path_prefixes: tuple[PathPrefix, ...] = ("/",)
    max_followers_per_key: NonNegativeInt = 1000
    max_followers: NonNegativeInt = 10_000
    coalesce_timeout: PositiveFloat = 30.0
    uncacheable_ttl: NonNegativeFloat = 10.0

    @model_validator(mode="after")
    def _consistent(self) -> Cache:
        if self.max_object_bytes > self.max_bytes:
            raise ValueError(
                f"max_object_bytes ({self.max_object_bytes}) is larger than max_bytes ({self.max_bytes}); "
                "lower max_object_bytes or raise max_bytes"
            )
        if not self.path_prefixes:
            raise ValueError('path_prefixes is empty, so nothing would be cached; list e.g. ["/"]')
        overlap = {name.lower() for name in self.key_cookies} & {
            name.lower() for name in self.session_cookies
        }
        if overlap:
            raise ValueError(
                f"{', '.join(sorted(overlap))} is both a session cookie and a key cookie; "
                "a session cookie already bypasses the cache, remove it from key_cookies"
            )
        return self
