"""Attack scenarios and visitor populations driven on a FakeClock against a fake site: they stop at
their bounds, label their traffic, use the documented sources, pace as documented, and visitors
behave like browsers (assets once, log in, follow redirects) and let a challenge solver step in."""

from __future__ import annotations

import asyncio
import dataclasses
import heapq
import ipaddress
import itertools
import random
from collections import Counter
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import pytest

from shieldwall.core.clock import FakeClock
from shieldwall.drill import attacks
from shieldwall.drill.campaign_site import DEMO_PASSWORD
from shieldwall.drill.client import Response, Target
from shieldwall.drill.loopback import ATTACK_SOURCES, LEGIT_SOURCES, source_addresses
from shieldwall.drill.runtime import Bounds, Budget, Requester, Runtime
from shieldwall.drill.visitors import Mix, Population, VisitLog, browser_headers

HOME = (
    b"<html><head><link rel='stylesheet' href='/static/app.css'><script src='/static/app.js'></script>"
    b"</head><body><img src='/static/logo.svg'><a href='/news/a'>a</a><a href='/news/b'>b</a></body></html>"
)
HTML = ((b"content-type", b"text/html"),)
T = TypeVar("T")


@dataclass
class Sent:
    at: float
    kind: str
    source: str | None
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    cookie: str


class VirtualTime:
    """asyncio on a FakeClock: `sleep` parks the caller until the clock reaches its wake time, and the
    clock jumps to the earliest wake time whenever every task is parked (nothing left in the loop's
    ready queue — a CPython asyncio detail, fine for a test). Concurrent sleeps overlap as in real
    time, and no test waits for real."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    async def sleep(self, seconds: float) -> None:
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(
            self._sleepers, (self.clock.monotonic() + max(0.0, seconds), next(self._order), future)
        )
        await future

    def run(self, main: Coroutine[Any, Any, T]) -> T:
        async def drive() -> T:
            loop = asyncio.get_running_loop()
            task = asyncio.ensure_future(main)
            while not task.done():
                await asyncio.sleep(0)
                if loop._ready or not self._sleepers:  # type: ignore[attr-defined]
                    continue
                wake, _, future = heapq.heappop(self._sleepers)
                if wake > self.clock.monotonic():
                    self.clock.advance(wake - self.clock.monotonic())
                if not future.done():
                    future.set_result(None)
            return task.result()

        return asyncio.run(drive())


@dataclass
class FakeSite:
    """Answers like the campaign site; each request takes `latency` s of virtual time."""

    clock: FakeClock = field(default_factory=FakeClock)
    latency: float = 0.01
    slow: dict[str, float] = field(default_factory=dict)  # source → its own latency
    sent: list[Sent] = field(default_factory=list)
    opened: int = 0
    closed: int = 0

    def __post_init__(self) -> None:
        self.time = VirtualTime(self.clock)

    def answer(
        self, method: str, path: str, logged_in: bool
    ) -> tuple[int, tuple[tuple[bytes, bytes], ...], bytes]:
        if path == "/":
            return 200, HTML, HOME
        if path.startswith("/static/"):
            return 200, ((b"cache-control", b"public, max-age=3600"),), b"x"
        if path == "/account" and not logged_in:
            return 303, ((b"location", b"/login"),), b""
        if path == "/login" and method == "POST":
            return 303, ((b"location", b"/account"), (b"set-cookie", b"session=s1; Path=/")), b""
        return 200, HTML, b"<html>page</html>"

    def runtime(self) -> Runtime:
        def open_session(kind: str, source: str | None) -> Requester:
            self.opened += 1
            return FakeSession(self, kind, source)

        return Runtime(Target("127.0.0.1", 8080, "campaign.test"), open_session, self.clock, self.time.sleep)

    def run(self, main: Coroutine[Any, Any, T]) -> T:
        return self.time.run(main)


class FakeSession:
    def __init__(self, site: FakeSite, kind: str, source: str | None) -> None:
        self.site, self.kind, self.source, self.cookie = site, kind, source, ""

    async def request(
        self, method: str, target: str, headers: Sequence[tuple[str, str]] = (), body: bytes = b""
    ) -> Response:
        site = self.site
        site.sent.append(
            Sent(
                site.clock.monotonic(),
                self.kind,
                self.source,
                method,
                target,
                tuple(headers),
                body,
                self.cookie,
            )
        )
        await site.time.sleep(site.slow.get(self.source or "", site.latency))
        status, headers_back, body_back = site.answer(
            method, target.partition("?")[0], self.cookie == "session=s1"
        )
        for name, value in headers_back:
            if name == b"set-cookie":
                self.cookie = value.decode().partition(";")[0]
        return Response(method, target, status, headers_back, body_back, site.latency)

    async def close(self) -> None:
        self.site.closed += 1


def in_pool(address: str | None, pool: str) -> bool:
    return address is not None and ipaddress.ip_address(address) in ipaddress.ip_network(pool)


FLOODS = [
    attacks.SingleSourceFlood(connections=5),
    attacks.DistributedFlood(sources=300, connections=20),
    attacks.BrowserMimicBotnet(sources=300, connections=20),
    attacks.CacheBustingFlood(sources=100, connections=10),
    attacks.PostFlood(sources=100, connections=10),
    attacks.LowAndSlow(sources=100, per_source_rate=5.0, connections=10),
]


@pytest.mark.parametrize("scenario", FLOODS, ids=lambda s: s.name)
def test_a_flood_stops_at_its_request_count(scenario):
    site = FakeSite(latency=0.001)
    scenario = dataclasses.replace(scenario, bounds=Bounds(250, 3600.0))
    tally = site.run(scenario.run(site.runtime()))
    assert tally.sent == len(site.sent) == 250
    assert tally.answered == 250 and tally.kind == "attack"
    assert {s.kind for s in site.sent} == {"attack"}
    assert all(in_pool(s.source, ATTACK_SOURCES) for s in site.sent)
    assert site.opened == site.closed  # every session it opened, it closed


@pytest.mark.parametrize("scenario", FLOODS, ids=lambda s: s.name)
def test_a_flood_stops_at_its_deadline(scenario):
    site = FakeSite(latency=0.01)
    scenario = dataclasses.replace(scenario, bounds=Bounds(10**9, 2.0))
    started = site.clock.monotonic()
    tally = site.run(scenario.run(site.runtime()))
    assert 0 < tally.sent < 10**9
    assert all(s.at < started + 2.0 for s in site.sent)  # nothing leaves after the deadline
    assert max(s.at for s in site.sent) >= started + 1.95  # and it kept sending until then
    assert site.clock.monotonic() - started <= 2.0 + 0.01 * 20  # at most the requests in flight finish


def test_a_single_source_flood_comes_from_one_address():
    site = FakeSite()
    site.run(attacks.SingleSourceFlood(connections=7, bounds=Bounds(100, 60)).run(site.runtime()))
    assert len({s.source for s in site.sent}) == 1
    assert site.opened == 7  # one keep-alive connection per worker, never let go


def test_a_distributed_flood_uses_every_source_and_spreads_over_prefixes():
    site = FakeSite()
    flood = attacks.DistributedFlood(sources=400, connections=40, per_connection=2, bounds=Bounds(800, 60))
    site.run(flood.run(site.runtime()))
    per_source = Counter(s.source for s in site.sent)
    assert len(per_source) == 400 and set(per_source.values()) == {2}
    assert len({str(s).rpartition(".")[0] for s in per_source}) == 400


def test_the_cache_buster_never_repeats_a_query():
    site = FakeSite()
    site.run(attacks.CacheBustingFlood(sources=20, connections=4, bounds=Bounds(500, 60)).run(site.runtime()))
    targets = [s.target for s in site.sent]
    assert all(t.startswith("/search?q=") for t in targets)
    assert len(set(targets)) == 500


def test_the_post_flood_posts_forms_to_donate_and_login():
    site = FakeSite()
    site.run(attacks.PostFlood(sources=20, connections=4, bounds=Bounds(200, 60)).run(site.runtime()))
    assert {s.method for s in site.sent} == {"POST"}
    assert {s.target for s in site.sent} == {"/donate", "/login"}
    assert all(("Content-Type", "application/x-www-form-urlencoded") in s.headers for s in site.sent)
    logins = [s.body for s in site.sent if s.target == "/login"]
    assert all(b.startswith(b"user=") and b"&password=" in b for b in logins)


def test_the_botnet_sends_exactly_the_visitors_browser_headers():
    site = FakeSite()
    botnet = attacks.BrowserMimicBotnet(sources=50, connections=5, bounds=Bounds(100, 60))
    site.run(botnet.run(site.runtime()))
    assert {s.headers for s in site.sent} == {browser_headers("document")}


def test_low_and_slow_keeps_every_source_under_its_rate():
    site = FakeSite(latency=0.005)
    rate = 2.0
    flood = attacks.LowAndSlow(sources=60, per_source_rate=rate, connections=25, bounds=Bounds(10**6, 5.0))
    tally = site.run(flood.run(site.runtime()))
    times: dict[str | None, list[float]] = {}
    for s in site.sent:
        times.setdefault(s.source, []).append(s.at)
    assert len(times) == 60
    gaps = [b - a for at in times.values() for a, b in itertools.pairwise(at)]
    assert min(gaps) >= 1 / rate - 1e-9
    assert tally.sent >= 0.9 * 60 * rate * 5.0  # and together they do send about sources x rate per second


def test_low_and_slow_holds_a_fast_source_to_its_rate_while_the_others_lag():
    # Five workers, each owning two of the ten sources; four workers' sources answer in 2 s. The
    # global pacer would hand their slots to the one fast worker: its sources must still wait their turn.
    flood = attacks.LowAndSlow(sources=10, per_source_rate=2.0, connections=5, bounds=Bounds(10**6, 5.0))
    sources = source_addresses(10, flood.seed, pool=ATTACK_SOURCES)
    site = FakeSite(latency=0.005, slow={s: 2.0 for i, s in enumerate(sources) if i % 5})
    site.run(flood.run(site.runtime()))
    fast = [s.at for s in site.sent if s.source == sources[0]]
    assert len(fast) >= 9
    assert min(b - a for a, b in itertools.pairwise(fast)) >= 0.5 - 1e-9


def test_pulse_waves_are_silent_between_bursts():
    site = FakeSite(latency=0.01)
    wave = attacks.SingleSourceFlood(connections=3)
    pulse = attacks.PulseWaves(wave, on_seconds=1.0, off_seconds=2.0, bounds=Bounds(10**6, 9.5))
    started = site.clock.monotonic()
    tally = site.run(pulse.run(site.runtime()))
    times = [s.at - started for s in site.sent]
    bursts = [[times[0]]]
    for earlier, later in itertools.pairwise(times):
        if later - earlier > 1.0:
            bursts.append([])
        bursts[-1].append(later)
    assert len(bursts) == 4 and tally.sent == len(site.sent)
    assert all(burst[-1] - burst[0] < 1.0 for burst in bursts)
    assert all(b[0] - a[-1] >= 2.0 for a, b in itertools.pairwise(bursts))
    assert all(time < 9.5 for time in times)
    assert "pulse waves" in tally.scenario


def test_a_scenario_charges_an_outer_budget():
    site = FakeSite()
    runtime = site.runtime()
    outer = Budget(Bounds(150, 60), runtime.clock)

    async def both() -> None:
        await asyncio.gather(
            attacks.DistributedFlood(sources=50, connections=5).run(runtime, within=outer),
            attacks.PostFlood(sources=50, connections=5).run(runtime, within=outer),
        )

    site.run(both())
    assert len(site.sent) == 150 == outer.taken


def test_scenarios_refuse_nonsense_parameters():
    with pytest.raises(ValueError, match="on_seconds"):
        attacks.PulseWaves(attacks.SingleSourceFlood(), on_seconds=0)
    with pytest.raises(ValueError, match="mode"):
        attacks.SlowConnections(mode="sideways")
    with pytest.raises(ValueError, match="per_source_rate"):
        site = FakeSite()
        site.run(attacks.LowAndSlow(per_source_rate=0).run(site.runtime()))


# -- visitors -------------------------------------------------------------------------------------------


def test_a_population_stops_at_its_request_count_and_is_labelled_legit():
    site = FakeSite()
    log = site.run(Population(visitors=30, bounds=Bounds(200, 3600)).run(site.runtime()))
    assert len(site.sent) == len(log.outcomes) == 200
    assert {s.kind for s in site.sent} == {"legit"}
    assert all(in_pool(s.source, LEGIT_SOURCES) for s in site.sent)
    assert site.opened == site.closed == 30


def test_a_population_stops_at_its_deadline():
    site = FakeSite()
    started = site.clock.monotonic()
    log = site.run(Population(visitors=30, bounds=Bounds(10**9, 20.0)).run(site.runtime()))
    assert log.outcomes and all(o.at < started + 20.0 for o in log.outcomes)


def test_several_visitors_share_one_nat_address():
    population = Population(visitors=20, nat_group=5)
    sources = population.sources()
    assert len(sources) == 20
    assert sources[:5] == [sources[0]] * 5 and len(set(sources)) == 16


def test_mix_assigns_habits_in_proportion():
    habits = Mix(reader=0.5, supporter=0.25, volunteer=0.0, rss=0.25, api=0.0).assign(8, random.Random(1))
    assert Counter(habits) == {"reader": 4, "supporter": 2, "rss": 2}
    assert len(Mix().assign(7, random.Random(1))) == 7
    with pytest.raises(ValueError, match="share"):
        Mix(reader=0, supporter=0, volunteer=0, rss=0, api=0).assign(3, random.Random(1))


def test_a_reader_loads_a_page_then_its_assets_once_then_articles():
    site = FakeSite()
    population = Population(
        visitors=1, nat_group=1, mix=Mix(1, 0, 0, 0, 0), visits_each=3, bounds=Bounds(1000, 3600)
    )
    site.run(population.run(site.runtime()))
    paths = [s.target for s in site.sent]
    assert paths[:4] == ["/", "/static/app.css", "/static/app.js", "/static/logo.svg"]
    assert paths.count("/static/app.css") == 1  # cached for an hour
    assert paths.count("/") == 3 and {p for p in paths if p.startswith("/news/")} <= {"/news/a", "/news/b"}
    first = site.sent[0].headers
    assert first == browser_headers("document")
    assert ("Sec-Fetch-Dest", "style") in site.sent[1].headers
    assert ("Referer", "http://campaign.test/") in site.sent[1].headers


def test_a_supporter_logs_in_once_then_donates():
    site = FakeSite()
    population = Population(
        visitors=1, nat_group=1, mix=Mix(0, 1, 0, 0, 0), visits_each=2, bounds=Bounds(1000, 3600)
    )
    site.run(population.run(site.runtime()))
    pages = [(s.method, s.target) for s in site.sent if not s.target.startswith("/static/")]
    assert pages == [
        ("GET", "/account"),
        ("GET", "/login"),  # the browser followed the redirect
        ("POST", "/login"),
        ("GET", "/account"),  # ... and the one after logging in
        ("GET", "/donate"),
        ("POST", "/donate"),
        ("GET", "/account"),  # second visit: still logged in
        ("GET", "/donate"),
        ("POST", "/donate"),
    ]
    login = next(s for s in site.sent if s.method == "POST" and s.target == "/login")
    assert f"password={DEMO_PASSWORD.replace(' ', '%20')}".encode() in login.body
    assert ("Origin", "http://campaign.test") in login.headers


def test_feed_readers_and_app_clients_poll_without_browser_headers():
    site = FakeSite()
    population = Population(
        visitors=2, nat_group=1, mix=Mix(0, 0, 0, 1, 1), visits_each=2, bounds=Bounds(1000, 3600)
    )
    site.run(population.run(site.runtime()))
    assert Counter(s.target for s in site.sent) == {"/feed.xml": 2, "/api/events": 2}
    assert all(not any(name == "sec-ch-ua" for name, _ in s.headers) for s in site.sent)


def test_a_challenge_solver_turns_a_challenge_into_a_success_with_its_time_in_the_latency():
    site = FakeSite(latency=0.01)
    runtime = site.runtime()
    solved = []

    async def solve(response: Response, session: Requester) -> Response | None:
        if response.target != "/":
            return None
        solved.append(response.target)
        runtime.clock.advance(0.5)  # the proof of work
        return await session.request("GET", "/")

    population = Population(
        visitors=1,
        nat_group=1,
        mix=Mix(1, 0, 0, 0, 0),
        visits_each=1,
        bounds=Bounds(1000, 3600),
        solve_challenge=solve,
    )
    log = site.run(population.run(runtime, log=VisitLog()))
    home = log.outcomes[0]
    assert solved == ["/"] and home.challenged and home.ok
    assert home.latency == pytest.approx(0.52)
    assert not any(o.challenged for o in log.outcomes[1:])


def test_a_flash_crowd_is_legit_and_logs_every_visitor():
    site = FakeSite()
    crowd = attacks.FlashCrowd(visitors=50, arrive_within=1.0, bounds=Bounds(10**6, 3600))
    tally = site.run(crowd.run(site.runtime()))
    assert tally.kind == "legit" and {s.kind for s in site.sent} == {"legit"}
    assert tally.sent == len(crowd.log.outcomes) == len(site.sent)
    assert len({o.visitor for o in crowd.log.outcomes}) == 50
    first_requests = [min(o.at for o in crowd.log.outcomes if o.visitor == v) for v in range(50)]
    assert max(first_requests) - min(first_requests) <= 1.0 + 50 * 0.01
