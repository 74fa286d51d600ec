"""A verified search-engine crawler among the drill's visitors: Googlebot, from an address the shield
knows to be Google's.

A shield must let a real crawler through a flood without a challenge (a crawler runs no JavaScript),
and must not let anyone through who merely copies its User-Agent. Real crawlers are verified by DNS,
which a drill must not use, so the shield under drill gets an address list (`[crawlers] ranges`)
holding SOURCE, the one loopback address this crawler sends from (`ranges_file_text`). Its requests
are labelled legit and scored like every visitor's, under the habit "crawler"; a challenge it gets
counts as the failure it would be.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from shieldwall.drill.campaign_site import ARTICLES
from shieldwall.drill.runtime import Bounds, Budget, Runtime
from shieldwall.drill.visitors import Outcome, VisitLog

# The last /24 of visitors.LEGIT_SOURCES (127.16.0.0/12), host 66 as in 66.249.66.1.
SOURCE: Final = "127.31.255.66"
USER_AGENT: Final = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
HABIT: Final = "crawler"
VISITOR_NUMBER: Final = -1  # visitors are numbered from 0
DEFAULT_BOUNDS: Final = Bounds(100_000, 60.0)
_PATHS: Final = ("/", *(f"/news/{slug}" for slug, _ in ARTICLES), "/feed.xml")
_HEADERS: Final = (("User-Agent", USER_AGENT), ("Accept", "text/html,*/*;q=0.8"), ("Accept-Encoding", "gzip"))


def ranges_file_text(source: str = SOURCE) -> str:
    """The `[crawlers] ranges` file that verifies the crawler: one address a line."""
    return f"# the drill's Googlebot, verified by address (a drill uses no DNS)\n{source}/32\n"


@dataclass(frozen=True)
class Crawler:
    """Fetches the home page, the news and the feed in turn, one every `interval` seconds, from
    `source`, until its bounds (or `within`) run out."""

    source: str = SOURCE
    interval: float = 1.0
    bounds: Bounds = DEFAULT_BOUNDS

    def __post_init__(self) -> None:
        if self.interval <= 0:
            raise ValueError("interval must be positive")

    async def run(self, runtime: Runtime, *, log: VisitLog, within: Budget | None = None) -> None:
        budget = Budget(self.bounds, runtime.clock, within)
        session = runtime.open_session("legit", self.source)
        try:
            turn = 0
            while budget.take():
                path = _PATHS[turn % len(_PATHS)]
                turn += 1
                started = runtime.clock.monotonic()
                response = await session.request("GET", path, _HEADERS)
                log.add(
                    Outcome(
                        started,
                        VISITOR_NUMBER,
                        HABIT,
                        "GET",
                        path,
                        response.status,
                        response.latency,
                        error=response.error,
                    )
                )
                await runtime.rest(self.interval, budget)
        finally:
            await session.close()
