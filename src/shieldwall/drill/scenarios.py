"""The attack library by name, for the command line: `--scenario NAME --rate R --sources N --seconds S`.

Each name builds one attacks.py scenario from the same few figures, bounded by `seconds` and by a
request count a little above what `rate` sends in that time. What `rate` and `sources` mean for each:

    distributed-flood     GET / from `sources` addresses (one per /24), `rate` requests/s in all
    single-source-flood   GET / from one address over 50 keep-alive connections, `rate` requests/s
    cache-busting         GET /search?q=<random> from `sources` addresses, `rate` requests/s
    post-flood            POST /donate and /login with random forms, `sources` addresses, `rate`/s
    low-and-slow          `sources` addresses, each at rate/sources per second (under per-IP limits)
    browser-mimic         distributed flood with Chrome's headers in Chrome's order, over / and the news
    pulse-waves           distributed flood 5 s on, 10 s off
    slow-headers          slowloris: `rate` connections held open from `sources` addresses (min 20)
    slow-body             slow POST bodies: `rate` connections held open from `sources` addresses
    flash-crowd           the control case: `sources` real visitors arriving within 2 s (rate unused)

Flood connections: a flood keeps one connection per request/s of its rate open (20 to 2000): enough
to keep sending its rate while each answer takes up to a second, as a botnet's thousands of machines
do whatever a site makes them wait. (With fewer, a queue in front of the site would slow the flood to
what the queue lets through, which no real botnet allows.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from shieldwall.drill import attacks
from shieldwall.drill.runtime import Bounds

MAX_RATE: Final = 5_000.0  # requests/s: more than one Python load generator sends on two cores
MAX_SOURCES: Final = 30_000  # loopback.ATTACK_SOURCES holds 32,768 /24s
MAX_SECONDS: Final = 600.0
MAX_SLOW_CONNECTIONS: Final = 2_000
MAX_CROWD: Final = 2_000
_MIN_CONNECTIONS, _MAX_CONNECTIONS = 20, 2_000


@dataclass(frozen=True)
class AttackParams:
    """What the command line says about an attack. `validate` bounds every figure."""

    rate: float = 1_000.0
    sources: int = 2_000
    seconds: float = 30.0
    seed: int = 1

    def validate(self) -> None:
        if not 0 < self.rate <= MAX_RATE:
            raise ValueError(f"--rate must be within (0, {MAX_RATE:g}] requests/s")
        if not 1 <= self.sources <= MAX_SOURCES:
            raise ValueError(f"--sources must be within 1..{MAX_SOURCES}")
        if not 0 < self.seconds <= MAX_SECONDS:
            raise ValueError(f"--seconds must be within (0, {MAX_SECONDS:g}]")

    @property
    def bounds(self) -> Bounds:
        return Bounds(int(self.rate * self.seconds * 1.1) + 100, self.seconds)

    @property
    def connections(self) -> int:
        return int(min(max(self.rate, _MIN_CONNECTIONS), _MAX_CONNECTIONS))


Builder = Callable[[AttackParams], attacks.Scenario]


def _distributed(p: AttackParams) -> attacks.Scenario:
    return attacks.DistributedFlood(
        sources=p.sources, connections=p.connections, rate=p.rate, seed=p.seed, bounds=p.bounds
    )


def _single(p: AttackParams) -> attacks.Scenario:
    return attacks.SingleSourceFlood(connections=50, rate=p.rate, seed=p.seed, bounds=p.bounds)


def _cache_busting(p: AttackParams) -> attacks.Scenario:
    return attacks.CacheBustingFlood(
        sources=p.sources, connections=p.connections, rate=p.rate, seed=p.seed, bounds=p.bounds
    )


def _post(p: AttackParams) -> attacks.Scenario:
    return attacks.PostFlood(
        sources=p.sources, connections=p.connections, rate=p.rate, seed=p.seed, bounds=p.bounds
    )


def _low_and_slow(p: AttackParams) -> attacks.Scenario:
    return attacks.LowAndSlow(
        sources=p.sources,
        per_source_rate=p.rate / p.sources,
        connections=p.connections,
        seed=p.seed,
        bounds=p.bounds,
    )


def _browser_mimic(p: AttackParams) -> attacks.Scenario:
    return attacks.BrowserMimicBotnet(
        sources=p.sources, connections=p.connections, rate=p.rate, seed=p.seed, bounds=p.bounds
    )


def _pulse(p: AttackParams) -> attacks.Scenario:
    wave = attacks.DistributedFlood(
        sources=p.sources, connections=p.connections, rate=p.rate, seed=p.seed, bounds=p.bounds
    )
    return attacks.PulseWaves(wave, on_seconds=5.0, off_seconds=10.0, bounds=p.bounds)


def _slow(mode: str) -> Builder:
    def build(p: AttackParams) -> attacks.Scenario:
        held = int(min(p.rate, MAX_SLOW_CONNECTIONS))
        return attacks.SlowConnections(
            connections=held,
            mode=mode,
            sources=max(20, min(p.sources, held)),
            seed=p.seed,
            bounds=Bounds(held * 50, p.seconds),
        )

    return build


def _flash_crowd(p: AttackParams) -> attacks.Scenario:
    visitors = min(p.sources, MAX_CROWD)
    return attacks.FlashCrowd(visitors=visitors, seed=p.seed, bounds=Bounds(visitors * 50, p.seconds))


SCENARIOS: Final[dict[str, Builder]] = {
    "distributed-flood": _distributed,
    "single-source-flood": _single,
    "cache-busting": _cache_busting,
    "post-flood": _post,
    "low-and-slow": _low_and_slow,
    "browser-mimic": _browser_mimic,
    "pulse-waves": _pulse,
    "slow-headers": _slow("headers"),
    "slow-body": _slow("body"),
    "flash-crowd": _flash_crowd,
}
LEGIT_SCENARIOS: Final = frozenset({"flash-crowd"})


def build(name: str, params: AttackParams) -> attacks.Scenario:
    """The scenario `name` with `params` (ValueError for an unknown name or a figure out of bounds)."""
    builder = SCENARIOS.get(name)
    if builder is None:
        raise ValueError(f"unknown scenario {name!r}; choose one of: {', '.join(SCENARIOS)}")
    params.validate()
    return builder(params)
