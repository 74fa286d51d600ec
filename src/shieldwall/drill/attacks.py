"""The attack scenarios a drill throws at a shield, each a dataclass of documented parameters.

Every scenario is bounded (`bounds`: at most so many requests, or connections for the slow ones, and
so many seconds; it stops by itself at whichever comes first), sends only to the runtime's target,
which `client.Target.parse` has already held to loopback, and labels its requests
`x-drill-kind: attack` so the campaign site can count what got through. Sources come from
loopback.ATTACK_SOURCES, so none is ever mistaken for a visitor.

    SingleSourceFlood     one address, many keep-alive connections, GET as fast as answered
    DistributedFlood      thousands of addresses across 127.128.0.0/9, a few requests per connection
    CacheBustingFlood     the expensive /search with a random query each time: no cache can help
    PostFlood             form posts to /donate and /login (random amounts, random credentials)
    LowAndSlow            many addresses, each one under a per-address rate a per-IP limit would allow
    BrowserMimicBotnet    a distributed flood sending Chrome's exact headers, in Chrome's order
    PulseWaves            any scenario switched on and off: bursts shorter than a detector's window
    SlowConnections       slowloris (a header line now and then) or slow POST (a body byte now and then)
    FlashCrowd            the control case: a crowd of real visitors, labelled legit

Scenarios compose: `run(runtime, within=budget)` charges a scenario's requests to an outer budget too,
and several can run at once with asyncio.gather. A run returns (and, given one, keeps updating) a
`Tally` of what was sent and what came back.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Final, Protocol
from urllib.parse import quote

from shieldwall.drill.campaign_site import ARTICLES
from shieldwall.drill.client import DRILL_KIND_HEADER, Response, connect_socket
from shieldwall.drill.loopback import ATTACK_SOURCES, source_addresses
from shieldwall.drill.runtime import Bounds, Budget, Pacer, Runtime, run_within
from shieldwall.drill.visitors import Mix, Population, SolveChallenge, VisitLog, browser_headers

DEFAULT_BOUNDS: Final = Bounds(100_000, 30.0)
# What a typical stresser written in Go sends: no browser would.
FLOOD_HEADERS: Final = (("User-Agent", "Go-http-client/1.1"), ("Accept-Encoding", "gzip"))
_FORM: Final = ("Content-Type", "application/x-www-form-urlencoded")
_NEWS_PATHS: Final = tuple(f"/news/{slug}" for slug, _ in ARTICLES)
_CHROME_NAVIGATION: Final = browser_headers("document")
_WHOLE_RUN: Final = 1 << 62  # requests per connection for a bot that never lets go of its connection

Headers = tuple[tuple[str, str], ...]
# One request to send, drawn with the worker's dice: (method, target, headers, body)
RequestMaker = Callable[[random.Random], tuple[str, str, Headers, bytes]]


@dataclass
class Tally:
    """What a scenario sent and what came back. `sent` counts a request when it leaves, so a drill
    can read it mid-run; answered + failed + in flight (or abandoned at the end) = sent."""

    scenario: str
    kind: str = "attack"
    sent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    def record(self, response: Response) -> None:
        if response.status:
            self.answer(response.status)
        else:
            self.fail(response.error)

    def answer(self, status: int) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1

    def fail(self, reason: str) -> None:
        self.errors[reason] = self.errors.get(reason, 0) + 1

    @property
    def answered(self) -> int:
        return sum(self.statuses.values())

    def to_json(self) -> dict[str, object]:
        return {
            "scenario": self.scenario,
            "kind": self.kind,
            "sent": self.sent,
            "answered": self.answered,
            "statuses": {str(status): count for status, count in sorted(self.statuses.items())},
            "errors": dict(sorted(self.errors.items())),
        }


class Scenario(Protocol):
    """What every scenario offers: a name and a bounded run."""

    @property
    def name(self) -> str: ...

    async def run(
        self, runtime: Runtime, *, within: Budget | None = None, tally: Tally | None = None
    ) -> Tally: ...


@dataclass(frozen=True)
class _FloodPlan:
    """How a flood sends: worker w uses sources w, w + connections, ... in turn, sending up to
    `per_connection` requests on each before moving on; all at most `rate` per second together, and
    each source issuing requests at least `source_interval` s apart."""

    sources: Sequence[str]
    connections: int
    per_connection: int
    make: RequestMaker
    seed: int
    rate: float | None = None
    source_interval: float = 0.0


class _Flood:
    """The one request loop behind every flood: subclasses say what to send (`plan`)."""

    name: ClassVar[str]
    bounds: Bounds

    def plan(self) -> _FloodPlan:
        raise NotImplementedError

    async def run(
        self, runtime: Runtime, *, within: Budget | None = None, tally: Tally | None = None
    ) -> Tally:
        """Flood until the bounds (or `within`) run out."""
        tally = Tally(self.name) if tally is None else tally
        budget = Budget(self.bounds, runtime.clock, within)
        plan = self.plan()
        if not plan.sources or plan.connections < 1 or plan.per_connection < 1:
            raise ValueError(f"{self.name}: needs sources, connections and requests per connection")
        pacer = None if plan.rate is None else Pacer(plan.rate, runtime.clock)
        next_use = [0.0] * len(plan.sources)

        async def worker(number: int) -> None:
            rng = random.Random(f"{plan.seed}:{number}")
            turn = number
            while not budget.expired():
                index = turn % len(plan.sources)
                turn += plan.connections
                session = runtime.open_session("attack", plan.sources[index])
                try:
                    for _ in range(plan.per_connection):
                        if pacer is not None:
                            await runtime.rest(pacer.reserve(), budget)
                        if plan.source_interval:  # wait for this source's turn, then claim it
                            while (
                                wait := next_use[index] - runtime.clock.monotonic()
                            ) > 0 and not budget.expired():
                                await runtime.rest(wait, budget)
                            next_use[index] = runtime.clock.monotonic() + plan.source_interval
                        if not budget.take():
                            return
                        tally.sent += 1
                        response = await session.request(*plan.make(rng))
                        tally.record(response)
                        if not response.status:
                            break  # this source's connection failed: on to the next one
                finally:
                    await session.close()

        await run_within(budget, (worker(number) for number in range(plan.connections)))
        return tally


def _get(paths: Sequence[str], headers: Headers) -> RequestMaker:
    def make(rng: random.Random) -> tuple[str, str, Headers, bytes]:
        return "GET", rng.choice(paths), headers, b""

    return make


@dataclass(frozen=True)
class SingleSourceFlood(_Flood):
    """GET `paths` from one address over `connections` keep-alive connections, each sending as soon as
    its last answer came (or all together at most `rate` per second)."""

    name: ClassVar[str] = "single-source GET flood"
    paths: tuple[str, ...] = ("/",)
    connections: int = 20
    rate: float | None = None
    seed: int = 11
    bounds: Bounds = DEFAULT_BOUNDS

    def plan(self) -> _FloodPlan:
        source = source_addresses(1, self.seed, pool=ATTACK_SOURCES)
        make = _get(self.paths, FLOOD_HEADERS)
        return _FloodPlan(source, self.connections, _WHOLE_RUN, make, self.seed, self.rate)


@dataclass(frozen=True)
class DistributedFlood(_Flood):
    """GET `paths` from `sources` addresses (`per_prefix` in each /24: 1 spreads them over as many
    /24s as a botnet on the internet), `connections` at a time, each address sending
    `per_connection` requests on its connection before the worker moves to its next address."""

    name: ClassVar[str] = "distributed GET flood"
    sources: int = 2000
    per_prefix: int = 1
    paths: tuple[str, ...] = ("/",)
    connections: int = 200
    per_connection: int = 5
    rate: float | None = None
    headers: Headers = FLOOD_HEADERS
    seed: int = 12
    bounds: Bounds = DEFAULT_BOUNDS

    def plan(self) -> _FloodPlan:
        sources = source_addresses(self.sources, self.seed, pool=ATTACK_SOURCES, per_prefix=self.per_prefix)
        make = _get(self.paths, self.headers)
        return _FloodPlan(sources, self.connections, self.per_connection, make, self.seed, self.rate)


@dataclass(frozen=True)
class BrowserMimicBotnet(DistributedFlood):
    """A distributed flood whose requests carry Chrome's navigation headers, in Chrome's order (the
    very headers the drill's visitors send), over the home page and the news."""

    name: ClassVar[str] = "botnet copying browser headers"
    paths: tuple[str, ...] = ("/", *_NEWS_PATHS)
    headers: Headers = _CHROME_NAVIGATION
    seed: int = 13


@dataclass(frozen=True)
class CacheBustingFlood(_Flood):
    """GET `path` (the expensive search) with a random query and a random cache-buster each time,
    from `sources` addresses: every request misses any cache and costs the origin in full."""

    name: ClassVar[str] = "cache-busting search flood"
    path: str = "/search"
    sources: int = 500
    per_prefix: int = 1
    connections: int = 100
    per_connection: int = 5
    rate: float | None = None
    seed: int = 14
    bounds: Bounds = DEFAULT_BOUNDS

    def plan(self) -> _FloodPlan:
        def make(rng: random.Random) -> tuple[str, str, Headers, bytes]:
            query = f"{rng.choice(('vote', 'plan', 'rally', 'tax'))}{rng.randrange(10**6)}"
            return "GET", f"{self.path}?q={query}&_={rng.getrandbits(48):x}", FLOOD_HEADERS, b""

        sources = source_addresses(self.sources, self.seed, pool=ATTACK_SOURCES, per_prefix=self.per_prefix)
        return _FloodPlan(sources, self.connections, self.per_connection, make, self.seed, self.rate)


@dataclass(frozen=True)
class PostFlood(_Flood):
    """POST forms to `paths` from `sources` addresses: /donate gets random amounts and addresses,
    /login random credentials (a credential-stuffing run), anything else a random field."""

    name: ClassVar[str] = "POST flood"
    paths: tuple[str, ...] = ("/donate", "/login")
    sources: int = 500
    per_prefix: int = 1
    connections: int = 100
    per_connection: int = 5
    rate: float | None = None
    seed: int = 15
    bounds: Bounds = DEFAULT_BOUNDS

    def plan(self) -> _FloodPlan:
        headers = (*FLOOD_HEADERS, _FORM)

        def make(rng: random.Random) -> tuple[str, str, Headers, bytes]:
            path, token = rng.choice(self.paths), f"{rng.getrandbits(40):x}"
            if path == "/donate":
                body = f"amount={rng.randint(1, 5000)}&email={token}%40{token[:4]}.example"
            elif path == "/login":
                body = f"user={token}&password={quote(token[::-1])}"
            else:
                body = f"field={token}"
            return "POST", path, headers, body.encode()

        sources = source_addresses(self.sources, self.seed, pool=ATTACK_SOURCES, per_prefix=self.per_prefix)
        return _FloodPlan(sources, self.connections, self.per_connection, make, self.seed, self.rate)


@dataclass(frozen=True)
class LowAndSlow(_Flood):
    """`sources` addresses, each sending at most `per_source_rate` requests per second (one request
    per connection, issued at least 1/rate apart): together sources times rate per second, while no single
    address ever exceeds a per-IP limit above `per_source_rate`."""

    name: ClassVar[str] = "low-and-slow distributed"
    sources: int = 2000
    per_prefix: int = 1
    per_source_rate: float = 0.2
    paths: tuple[str, ...] = ("/", "/search?q=vote", *_NEWS_PATHS)
    connections: int = 200
    seed: int = 16
    bounds: Bounds = DEFAULT_BOUNDS

    def plan(self) -> _FloodPlan:
        if self.per_source_rate <= 0:
            raise ValueError("per_source_rate must be positive")
        sources = source_addresses(self.sources, self.seed, pool=ATTACK_SOURCES, per_prefix=self.per_prefix)
        make = _get(self.paths, FLOOD_HEADERS)
        total = self.sources * self.per_source_rate
        return _FloodPlan(sources, self.connections, 1, make, self.seed, total, 1.0 / self.per_source_rate)


@dataclass(frozen=True)
class PulseWaves:
    """`wave` for `on_seconds`, silence for `off_seconds`, again and again until the bounds run out.
    The wave's own bounds apply to each burst; every request also counts against these bounds."""

    wave: Scenario
    on_seconds: float = 5.0
    off_seconds: float = 10.0
    bounds: Bounds = DEFAULT_BOUNDS

    def __post_init__(self) -> None:
        if self.on_seconds <= 0 or self.off_seconds < 0:
            raise ValueError("on_seconds must be positive and off_seconds not negative")

    @property
    def name(self) -> str:
        return f"pulse waves of {self.wave.name} ({self.on_seconds:g} s on, {self.off_seconds:g} s off)"

    async def run(
        self, runtime: Runtime, *, within: Budget | None = None, tally: Tally | None = None
    ) -> Tally:
        tally = Tally(self.name) if tally is None else tally
        budget = Budget(self.bounds, runtime.clock, within)
        while not budget.expired():
            burst = Budget(Bounds(budget.left, self.on_seconds), runtime.clock, budget)
            await self.wave.run(runtime, within=burst, tally=tally)
            await runtime.rest(burst.seconds_left(), budget)  # a wave that ended early waits for its end
            await runtime.rest(self.off_seconds, budget)
        return tally


@dataclass(frozen=True)
class SlowConnections:
    """Hold up to `connections` connections open from `sources` addresses, each sending its request
    so slowly that it never completes: mode "headers" (slowloris: one more header line every
    `drip_seconds`) or "body" (slow POST: a Content-Length of 100 kB, then one byte every
    `drip_seconds`). A connection the server closes or answers is opened again. `bounds.max_requests`
    bounds the connections opened in all. The tally counts answers by status and closes without one
    as errors ("closed by server", "refused", ...)."""

    name: ClassVar[str] = "slow connections"
    connections: int = 200
    mode: str = "headers"
    drip_seconds: float = 5.0
    sources: int = 20
    seed: int = 17
    bounds: Bounds = DEFAULT_BOUNDS

    def __post_init__(self) -> None:
        if self.mode not in ("headers", "body") or self.drip_seconds <= 0 or self.connections < 1:
            raise ValueError("mode is 'headers' or 'body', drip_seconds positive, connections at least 1")

    async def run(
        self, runtime: Runtime, *, within: Budget | None = None, tally: Tally | None = None
    ) -> Tally:
        tally = Tally(f"{self.name} ({self.mode})") if tally is None else tally
        budget = Budget(self.bounds, runtime.clock, within)
        sources = source_addresses(self.sources, self.seed, pool=ATTACK_SOURCES)
        host = runtime.target.host_header
        if self.mode == "headers":
            opening, drip = (
                f"GET / HTTP/1.1\r\nHost: {host}\r\n{DRILL_KIND_HEADER}: attack\r\n",
                b"X-a: b\r\n",
            )
        else:
            opening = (
                f"POST /donate HTTP/1.1\r\nHost: {host}\r\n{DRILL_KIND_HEADER}: attack\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100000\r\n\r\n"
            )
            drip = b"a"

        async def drip_until_cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            """Send `drip` every drip_seconds until the server answers or closes, or the budget ends."""
            while not budget.expired():
                try:
                    async with asyncio.timeout(min(self.drip_seconds, budget.seconds_left())):
                        data = await reader.read(4096)
                except TimeoutError:
                    writer.write(drip)
                    continue
                except OSError:
                    data = b""
                if data.startswith(b"HTTP/1.") and data[9:12].isdigit():
                    tally.answer(int(data[9:12]))
                else:
                    tally.fail("closed by server")
                return

        async def hold(number: int) -> None:
            while budget.take():
                tally.sent += 1
                try:
                    sock = await connect_socket(runtime.target, sources[number % len(sources)])
                except OSError as exc:
                    tally.fail(f"connect: {exc.__class__.__name__}")
                    await runtime.rest(self.drip_seconds, budget)  # do not spin on a target that refuses
                    continue
                try:
                    reader, writer = await asyncio.open_connection(sock=sock)
                except BaseException:
                    sock.close()
                    raise
                try:
                    writer.write(opening.encode())
                    await drip_until_cut(reader, writer)
                finally:
                    writer.close()

        await run_within(budget, (hold(number) for number in range(self.connections)))
        return tally


@dataclass(frozen=True)
class FlashCrowd:
    """The control case: `visitors` real visitors (readers mostly, some supporters and volunteers)
    arriving within `arrive_within` s for one visit each, thinking `think_seconds` between pages, as
    when a debate-night link goes viral. A shield must serve them, not mistake them for a flood.
    Labelled legit; their outcomes go to `log` for the scorecard, and the tally counts their answers."""

    name: ClassVar[str] = "flash crowd (legitimate)"
    visitors: int = 300
    arrive_within: float = 2.0
    think_seconds: tuple[float, float] = (0.5, 2.0)
    seed: int = 18
    bounds: Bounds = DEFAULT_BOUNDS
    solve_challenge: SolveChallenge | None = None
    log: VisitLog = field(default_factory=VisitLog, compare=False)

    async def run(
        self, runtime: Runtime, *, within: Budget | None = None, tally: Tally | None = None
    ) -> Tally:
        tally = Tally(self.name, kind="legit") if tally is None else tally
        crowd = Population(
            visitors=self.visitors,
            seed=self.seed,
            mix=Mix(reader=0.85, supporter=0.1, volunteer=0.05, rss=0.0, api=0.0),
            nat_group=1,
            think_seconds=self.think_seconds,
            arrive_within=self.arrive_within,
            visits_each=1,
            bounds=self.bounds,
            solve_challenge=self.solve_challenge,
        )
        first = len(self.log.outcomes)
        await crowd.run(runtime, log=self.log, within=within)
        for outcome in self.log.outcomes[first:]:
            tally.sent += 1
            if outcome.status:
                tally.answer(outcome.status)
            else:
                tally.fail(outcome.error)
        return tally
