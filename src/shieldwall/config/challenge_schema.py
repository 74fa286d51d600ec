"""`[challenge]` and `[crawlers]`: the proof-of-work page that challenge rules answer, the clearance
cookie a solved challenge earns, and who passes without a challenge (exempt routes, verified crawlers).
See docs/policy.md#challenges for how the pieces fit."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator, model_validator

from shieldwall.config.validators import PositiveFloat, PositiveInt, Section, StrictBool

_COOKIE_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_CRAWLER_NAMES = ("google", "bing", "apple", "yandex", "baidu", "duckduckgo")

# Routes whose clients cannot run a challenge: feed readers, API clients, crawlers fetching robots.txt
# and sitemaps, ACME and other .well-known fetchers. They are still rate limited by the rules.
DEFAULT_EXEMPT = (
    "/feed",
    "/feed/*",
    "/rss",
    "/rss/*",
    "/atom",
    "*.rss",
    "*.atom",
    "*.xml",
    "/api/*",
    "/.well-known/*",
    "/robots.txt",
    "/favicon.ico",
)


def _glob(value: str) -> str:
    if not value.startswith(("/", "*")):
        raise ValueError("a path pattern starts with '/' or '*'; write e.g. /feed/* or *.xml")
    return value


PathGlob = Annotated[str, AfterValidator(_glob)]


class Challenge(Section):
    """The proof-of-work page, the no-JavaScript wait, and the clearance cookie."""

    difficulty: Annotated[int, Field(ge=8, le=24, strict=True)] = Field(
        default=14,
        description="leading zero bits of SHA-256 a browser must find in normal times (~16,000 hashes "
        "at 14: well under a second on a mid-range phone); +1 per threat level and per recent offence "
        "of the client, up to max_difficulty",
    )
    max_difficulty: Annotated[int, Field(ge=8, le=26, strict=True)] = 20
    wait_seconds: Annotated[int, Field(ge=1, le=60, strict=True)] = Field(
        default=5, description="seconds a browser without JavaScript waits before it may continue"
    )
    clearance_seconds: PositiveInt = Field(
        default=14_400, description="how long a clearance cookie is good for (at most key_rotation)"
    )
    key_rotation: PositiveFloat = Field(
        default=86_400.0,
        description="seconds between signing keys derived from the secret; the previous key stays valid "
        "one more period",
    )
    cookie_name: str = "sw_clearance"
    exempt_paths: tuple[PathGlob, ...] = Field(
        default=DEFAULT_EXEMPT,
        description="path patterns never challenged (still rate limited): feeds, APIs, robots.txt",
    )

    @field_validator("cookie_name")
    @classmethod
    def _cookie(cls, value: str) -> str:
        if not _COOKIE_NAME.fullmatch(value):
            raise ValueError("use 1-64 letters, digits, '-' and '_'")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Challenge:
        if self.difficulty > self.max_difficulty:
            raise ValueError("difficulty may not be above max_difficulty")
        if self.clearance_seconds > self.key_rotation:
            raise ValueError("clearance_seconds may not be longer than key_rotation")
        return self


def _crawler(value: str) -> str:
    if value not in _CRAWLER_NAMES:
        raise ValueError(f"not a known crawler; use one of {', '.join(_CRAWLER_NAMES)}")
    return value


class Crawlers(Section):
    """Search engines' crawlers pass challenges once verified: by forward-confirmed reverse DNS (the
    address's name is under the engine's domain and resolves back to it) or by the engine's published
    address list. A client that only claims to be one (its User-Agent) is challenged like anyone."""

    verify: StrictBool = Field(default=True, description="let verified crawlers pass challenges")
    dns: StrictBool = Field(default=True, description="verify by reverse and forward DNS lookups")
    dns_timeout: PositiveFloat = 2.0
    ranges: dict[Annotated[str, AfterValidator(_crawler)], Path] = Field(
        default_factory=dict,
        description="crawler name → file of its addresses (Google's JSON format or one CIDR a line)",
    )
