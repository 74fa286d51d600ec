"""The people a shield must keep serving: a population of browser-like visitors to the campaign site.

Each visitor has one source address in LEGIT_SOURCES (a few of them share one, as people behind an
office or carrier NAT do), one keep-alive connection and a cookie jar, and a habit:

    reader      the home page, then the assets it references (kept for their max-age, as a browser
                caches them), then an article or two, now and then a search
    supporter   logs in (GET /login, POST /login, follows the 303 to /account), then donates
    volunteer   the volunteer form, then signs up
    rss         a feed reader polling /feed.xml (not a browser: no assets, its own headers)
    api         the campaign's app polling /api/events

Browsers send Chrome's headers in Chrome's order (`browser_headers`): what a shield sees from a real
visitor, and what the "browser mimic" botnet copies. Between pages a visitor thinks for a random time
(seeded: the same seed gives the same visits). Every request is labelled `x-drill-kind: legit` and
leaves an `Outcome` in a `VisitLog`, from which the scorecard computes success rates and latencies.

Challenges: a shield may answer a visitor with a challenge instead of the page. `solve_challenge`, when
set, sees every response a visitor gets and returns None when it is not a challenge it knows, or the
response obtained after solving it (posting the solution through the same session, so the clearance
cookie lands in the visitor's jar). A solved challenge counts as success, with the solving time in
its latency. Without a solver, a challenge counts as whatever its status says.
"""

from __future__ import annotations

import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import quote

from shieldwall.drill.campaign_site import ARTICLES, DEMO_PASSWORD
from shieldwall.drill.client import Response
from shieldwall.drill.loopback import LEGIT_SOURCES, source_addresses
from shieldwall.drill.runtime import Bounds, Budget, Requester, Runtime, run_within

# Given a response and the session that got it: None if it is no challenge, else the final response.
SolveChallenge = Callable[[Response, Requester], Awaitable[Response | None]]

MAX_OUTCOMES: Final = 1_000_000
DEFAULT_BOUNDS: Final = Bounds(100_000, 60.0)
_MAX_REDIRECTS: Final = 3
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_ASSET: Final = re.compile(rb"""(?:href|src)=['"](/static/[^'"]+)['"]""")
_ARTICLE: Final = re.compile(rb"""href=['"](/news/[^'"]+)['"]""")
_SEARCH_WORDS: Final = ("schools", "debate", "vote", "rally", "donors", "hours")
_CHROME_UA: Final = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
_SEC_CH_UA: Final = '"Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"'
_ACCEPT: Final = {
    "document": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,"
    "*/*;q=0.8,application/signed-exchange;v=b3;q=0.7",
    "style": "text/css,*/*;q=0.1",
    "script": "*/*",
    "image": "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
}
FEED_READER_HEADERS: Final = (
    ("User-Agent", "FreshRSS/1.23.1 (Linux; https://freshrss.org)"),
    ("Accept", "*/*"),
)
APP_HEADERS: Final = (
    ("User-Agent", "VoteGreen/3.2.0 (Android 14; Pixel 7)"),
    ("Accept", "application/json"),
    ("Accept-Encoding", "gzip"),
)


def browser_headers(
    dest: str, referer: str | None = None, origin: str | None = None
) -> tuple[tuple[str, str], ...]:
    """Chrome 124's request headers, in its order, for a request of Sec-Fetch-Dest `dest` ("document",
    "style", "script", "image"); `origin` makes it a form POST. Host comes first and Content-Length and
    Cookie are added by the client."""
    navigate = dest == "document"
    headers: list[tuple[str, str]] = [("Connection", "keep-alive")]
    if origin is not None:
        headers.append(("Cache-Control", "max-age=0"))
    headers += [("sec-ch-ua", _SEC_CH_UA), ("sec-ch-ua-mobile", "?0"), ("sec-ch-ua-platform", '"Windows"')]
    if origin is not None:
        headers += [("Origin", origin), ("Content-Type", "application/x-www-form-urlencoded")]
    if navigate:
        headers.append(("Upgrade-Insecure-Requests", "1"))
    headers += [("User-Agent", _CHROME_UA), ("Accept", _ACCEPT[dest])]
    headers.append(("Sec-Fetch-Site", "none" if referer is None else "same-origin"))
    headers.append(("Sec-Fetch-Mode", "navigate" if navigate else "no-cors"))
    if navigate:
        headers.append(("Sec-Fetch-User", "?1"))
    headers.append(("Sec-Fetch-Dest", dest))
    if referer is not None:
        headers.append(("Referer", referer))
    headers += [("Accept-Encoding", "gzip, deflate, br, zstd"), ("Accept-Language", "en-US,en;q=0.9")]
    return tuple(headers)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One legitimate request: when it started (runtime clock), what it was, how it went."""

    at: float
    visitor: int
    habit: str
    method: str
    path: str
    status: int
    latency: float
    challenged: bool = False
    error: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 400


@dataclass
class VisitLog:
    """Every Outcome of a run, in the order they finished; at most MAX_OUTCOMES (then `dropped`)."""

    outcomes: list[Outcome] = field(default_factory=list)
    dropped: int = 0

    def add(self, outcome: Outcome) -> None:
        if len(self.outcomes) < MAX_OUTCOMES:
            self.outcomes.append(outcome)
        else:
            self.dropped += 1


@dataclass(frozen=True)
class Mix:
    """Shares of each habit in a population (normalised; zero leaves a habit out)."""

    reader: float = 0.6
    supporter: float = 0.1
    volunteer: float = 0.05
    rss: float = 0.15
    api: float = 0.1

    def assign(self, count: int, rng: random.Random) -> list[str]:
        """`count` habits in these proportions (largest remainders), in a seeded random order."""
        weights = {habit: getattr(self, habit) for habit in _HABITS}
        total = sum(weights.values())
        if total <= 0 or min(weights.values()) < 0:
            raise ValueError("a Mix needs non-negative shares and at least one positive")
        exact = {habit: count * weight / total for habit, weight in weights.items()}
        counts = {habit: int(share) for habit, share in exact.items()}
        by_remainder = sorted(_HABITS, key=lambda habit: counts[habit] - exact[habit])
        for habit in by_remainder[: count - sum(counts.values())]:
            counts[habit] += 1
        habits = [habit for habit in _HABITS for _ in range(counts[habit])]
        rng.shuffle(habits)
        return habits


@dataclass(frozen=True)
class Population:
    """`visitors` people visiting over and over (or `visits_each` times), first arrivals spread over
    `arrive_within` s, thinking `think_seconds` (uniform) between pages, until `bounds` run out.
    `nat_group` of them share one source address; the others get one each, `per_prefix` per /24."""

    visitors: int = 40
    seed: int = 1
    mix: Mix = Mix()
    nat_group: int = 6
    per_prefix: int = 4
    think_seconds: tuple[float, float] = (1.0, 4.0)
    arrive_within: float = 3.0
    visits_each: int | None = None
    bounds: Bounds = DEFAULT_BOUNDS
    solve_challenge: SolveChallenge | None = None

    def sources(self) -> list[str]:
        """One address per visitor; the first `nat_group` visitors share the first address."""
        shared = min(max(self.nat_group, 1), self.visitors)
        own = source_addresses(
            self.visitors - shared + 1, self.seed, pool=LEGIT_SOURCES, per_prefix=self.per_prefix
        )
        return [own[0]] * shared + own[1:]

    async def run(
        self, runtime: Runtime, *, log: VisitLog | None = None, within: Budget | None = None
    ) -> VisitLog:
        """Run every visitor until the bounds (or `within`) run out; their outcomes go to `log`."""
        log = VisitLog() if log is None else log
        budget = Budget(self.bounds, runtime.clock, within)
        rng = random.Random(self.seed)
        habits = self.mix.assign(self.visitors, rng)
        visitors = [
            _Visitor(
                number=number,
                habit=habit,
                source=source,
                runtime=runtime,
                budget=budget,
                log=log,
                population=self,
                rng=random.Random(rng.getrandbits(64)),
            )
            for number, (habit, source) in enumerate(zip(habits, self.sources(), strict=True))
        ]
        await run_within(budget, (visitor.live() for visitor in visitors))
        return log


_HABITS: Final = ("reader", "supporter", "volunteer", "rss", "api")


class _Visitor:
    """One person: a session from one source, a habit, a browser cache of assets, a seeded dice."""

    def __init__(
        self,
        *,
        number: int,
        habit: str,
        source: str,
        runtime: Runtime,
        budget: Budget,
        log: VisitLog,
        population: Population,
        rng: random.Random,
    ) -> None:
        self.number, self.habit, self.runtime, self.budget, self.log = number, habit, runtime, budget, log
        self.population, self.rng = population, rng
        self.session = runtime.open_session("legit", source)
        self.origin = f"http://{runtime.target.host_header}"
        self.cached_until: dict[str, float] = {}

    async def live(self) -> None:
        visit = {"reader": self._read, "supporter": self._support, "volunteer": self._volunteer}.get(
            self.habit
        )
        try:
            await self.runtime.rest(self.rng.uniform(0, self.population.arrive_within), self.budget)
            visits = 0
            while not self.budget.expired() and visits != self.population.visits_each:
                if visit is not None:
                    await visit()
                else:
                    await self._poll()
                visits += 1
                await self._think(3 if visit is None else 1)
        finally:
            await self.session.close()

    # -- habits ----------------------------------------------------------------------------------------

    async def _read(self) -> None:
        home = await self._page("/")
        if home is None or not home.ok:
            return
        articles = [m.decode("latin-1") for m in _ARTICLE.findall(home.body)] or [f"/news/{ARTICLES[0][0]}"]
        for _ in range(self.rng.randint(1, 2)):
            await self._think()
            await self._page(self.rng.choice(articles), referer="/")
        if self.rng.random() < 0.2:
            await self._think()
            await self._page("/search?q=" + quote(self.rng.choice(_SEARCH_WORDS)), referer="/")

    async def _support(self) -> None:
        account = await self._page("/account")
        if account is None:
            return
        if account.target != "/account":  # logged out: the site sent us to its login page
            await self._think()
            user = f"supporter{self.number}"
            body = f"user={user}&password={quote(DEMO_PASSWORD)}".encode()
            await self._page("/login", referer="/login", method="POST", body=body)
        await self._think()
        await self._page("/donate", referer="/account")
        await self._think()
        body = (
            f"amount={self.rng.choice((5, 10, 25, 50))}&email=supporter{self.number}%40example.org".encode()
        )
        await self._page("/donate", referer="/donate", method="POST", body=body)

    async def _volunteer(self) -> None:
        await self._page("/volunteer")
        await self._think()
        body = f"name=Volunteer+{self.number}&email=volunteer{self.number}%40example.org".encode()
        await self._page("/volunteer", referer="/volunteer", method="POST", body=body)

    async def _poll(self) -> None:
        if self.habit == "rss":
            await self._fetch("GET", "/feed.xml", FEED_READER_HEADERS)
        else:
            await self._fetch("GET", "/api/events", APP_HEADERS)

    # -- requests --------------------------------------------------------------------------------------

    async def _page(
        self, path: str, *, referer: str | None = None, method: str = "GET", body: bytes = b""
    ) -> Response | None:
        """A navigation (following same-site redirects, as a browser does), then the assets an HTML
        page references that are not cached. None when the budget ran out first."""
        referer_url = None if referer is None else self.origin + referer
        origin = self.origin if method == "POST" else None
        response = await self._fetch(method, path, browser_headers("document", referer_url, origin), body)
        for _ in range(_MAX_REDIRECTS):
            location = None if response is None else response.header(b"location")
            if response is None or response.status not in _REDIRECTS or location is None:
                break
            path = location.decode("latin-1")
            if not path.startswith("/"):  # an absolute URL: somewhere else, not followed
                break
            response = await self._fetch("GET", path, browser_headers("document", referer_url))
        content_type = b"" if response is None else response.header(b"content-type") or b""
        if response is not None and response.ok and content_type.startswith(b"text/html"):
            await self._assets(response, self.origin + path)
        return response

    async def _assets(self, page: Response, referer: str) -> None:
        now = self.runtime.clock.monotonic()
        for match in dict.fromkeys(_ASSET.findall(page.body)):
            asset = match.decode("latin-1")
            if self.cached_until.get(asset, 0.0) > now:
                continue
            dest = {"css": "style", "js": "script"}.get(asset.rpartition(".")[2], "image")
            response = await self._fetch("GET", asset, browser_headers(dest, referer))
            if response is not None and response.ok:
                self.cached_until[asset] = now + _max_age(response)

    async def _fetch(
        self, method: str, path: str, headers: tuple[tuple[str, str], ...], body: bytes = b""
    ) -> Response | None:
        if not self.budget.take():
            return None
        clock = self.runtime.clock
        started = clock.monotonic()
        response = await self.session.request(method, path, headers, body)
        latency, challenged = response.latency, False
        if self.population.solve_challenge is not None and response.status:
            solved = await self.population.solve_challenge(response, self.session)
            if solved is not None:
                response, challenged = solved, True
                latency = clock.monotonic() - started
        self.log.add(
            Outcome(
                started,
                self.number,
                self.habit,
                method,
                path,
                response.status,
                latency,
                challenged,
                response.error,
            )
        )
        return response

    async def _think(self, scale: float = 1.0) -> None:
        low, high = self.population.think_seconds
        await self.runtime.rest(scale * self.rng.uniform(low, high), self.budget)


def _max_age(response: Response) -> float:
    for directive in (response.header(b"cache-control") or b"").decode("latin-1").split(","):
        name, _, value = directive.strip().partition("=")
        if name.lower() == "max-age" and value.isdigit():
            return float(value)
    return 0.0
