"""Run a detector scenario sans-io: synthetic requests in, the mode, signatures and incident out.

Each simulated second, for each request of `Traffic.second(s)`:
  1. the mode and the signatures in force act on it as in a worker: the real `ModeEffects.decide` on the
     view the real `dataplane.views.request_view` makes of its head, with a challenge gate that lets a
     client through only once it holds a clearance; clients of a pool that `solves_challenges` (real
     browsers) earn one by being challenged once, the others never do;
  2. it is counted by the real `WorkerTelemetry.finished` of its worker (client prefixes are pinned to
     workers as the reuseport BPF does), into an `Exchange` carrying its head and outcome: the
     telemetry gets exactly what it gets in the data plane, without a socket;
  3. a request let through goes to a toy origin (traffic.Origin) whose latency and 5xx share depend
     on that second's load.
Then every worker's second goes through its wire format into `ControlLoop.receive`, and
`ControlLoop.tick` judges it; the state it returns applies from the next second on (the workers poll
the control state between seconds). Nothing sleeps and nothing opens a socket: a five-minute scenario
runs in a few seconds, and the same files give the same run.

Not simulated (see README.md): the rules and per-IP limits, bans (so `challenge_suspicious` never
fires: nobody is a recent offender), admission control and the cache, connections and bytes, and the
reference IDs of refused requests.

Times: a scenario's time t counts seconds from its start. Simulated second s covers [s, s + 1) and is
judged by the tick at t = s + 1, so "the mode at t" is the mode once second t - 1 was judged.

    PYTHONPATH=tests .venv/bin/python -m scenarios.runner tests/scenarios/pulse_waves [--seconds]
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, cast

from scenarios.expected import Expected
from scenarios.traffic import Traffic
from shieldwall.config.load import load_config
from shieldwall.config.schema import Settings
from shieldwall.control.loop import ControlLoop
from shieldwall.control.settings import detector_config
from shieldwall.dataplane.exchange import Exchange
from shieldwall.dataplane.mode_effects import ModeEffects
from shieldwall.dataplane.telemetry import WorkerTelemetry
from shieldwall.dataplane.views import request_view
from shieldwall.detector.counters import Outcome, SecondCounters
from shieldwall.detector.events import Event, EventKind, Mode
from shieldwall.policy.decision import ALLOW, Action, RequestView

if TYPE_CHECKING:
    from shieldwall.dataplane.client import ClientConnection

T0 = 1000.0  # the monotonic clock at t = 0
WALL0 = 1_800_000_000.0  # the wall clock at t = 0


@dataclass(frozen=True)
class Scenario:
    name: str
    folder: Path
    settings: Settings
    traffic: Traffic
    expected: Expected

    @staticmethod
    def load(folder: Path) -> Scenario:
        """The folder's config.toml (through the real config loader), traffic and expected files."""
        return Scenario(
            folder.name,
            folder,
            load_config(folder / "config.toml"),
            Traffic.load(folder),
            Expected.load(folder),
        )


class Clearances:
    """The challenge gate: a client passes once it holds a clearance (it solved a challenge)."""

    def __init__(self) -> None:
        self.cleared: set[str] = set()

    def passes(self, view: RequestView) -> bool:
        return view.client_ip in self.cleared


class _Peer:
    """What an Exchange reads of its client connection: the client's address."""

    client_ip = ""


@dataclass
class PhaseTally:
    requests: int = 0
    allowed: int = 0  # sent to the origin
    challenged: int = 0
    blocked: int = 0
    by_signature: int = 0  # of those challenged or blocked, by an attack signature (the rest: the mode)

    @property
    def mitigated_share(self) -> float:
        return (self.challenged + self.blocked) / self.requests if self.requests else 0.0

    @property
    def blocked_share(self) -> float:
        return self.blocked / self.requests if self.requests else 0.0


@dataclass(frozen=True)
class ModeChange:
    t: int
    old: Mode
    new: Mode
    reason: str
    rps: float


@dataclass
class SeenSignature:
    id: str
    conditions: dict[str, str]
    action: str  # the last one (a signature mined again may change it)
    coverage: float  # when first mined
    collateral: float
    description: str
    first: int  # t at which it was first in force
    last: int  # t at which it was last in force


@dataclass
class SeenIncident:
    id: str
    opened: int
    closed: int | None = None
    peak_mode: Mode = Mode.NORMAL
    peak_rps: float = 0.0


@dataclass(frozen=True)
class TickRecord:
    t: int
    mode: Mode
    level: int  # the detector's verdict on the second: 0 calm, 1 suspicious, 2 attack
    rps: float
    rps_ratio: float  # to the learnt baseline (0 while the baseline warms up or below min_rps)
    legit: int
    mitigated: int
    reasons: str


@dataclass(frozen=True)
class Timings:
    """Seconds from the measured phases' start (detect, under_attack) or end (normal, closed); None when
    it did not happen."""

    start: int | None
    end: int | None
    detect: int | None  # the mode left normal
    under_attack: int | None
    normal: int | None  # back to normal after the end (0: it already was)
    closed: int | None  # the incident closed after the end
    peak_ratio: float = 0.0  # the highest rate over its baseline from the start to the end


@dataclass
class Result:
    name: str
    ticks: list[TickRecord] = field(default_factory=list)
    changes: list[ModeChange] = field(default_factory=list)
    signatures: dict[str, SeenSignature] = field(default_factory=dict)
    incidents: list[SeenIncident] = field(default_factory=list)
    phases: dict[str, PhaseTally] = field(default_factory=dict)
    timings: Timings = Timings(None, None, None, None, None, None)

    def mode_at(self, t: int) -> Mode:
        return self.ticks[t - 1].mode

    def summary(self) -> str:
        lines = [f"scenario {self.name}: {describe_timings(self.timings)}"]
        lines += [f"  t={c.t:4d} {c.old} -> {c.new} ({c.rps:.0f} req/s): {c.reason}" for c in self.changes]
        for sig in self.signatures.values():
            lines.append(
                f"  signature {sig.id} t={sig.first}..{sig.last} {sig.action}: {sig.description} "
                f"(coverage {sig.coverage:.0%}, collateral {sig.collateral:.2%})"
            )
        for inc in self.incidents:
            lines.append(f"  incident opened t={inc.opened} closed t={inc.closed} peak {inc.peak_mode}")
        for name, tally in self.phases.items():
            lines.append(
                f"  phase {name}: {tally.requests} requests, {tally.mitigated_share:.1%} mitigated ("
                f"{tally.challenged} challenged, {tally.blocked} blocked, {tally.by_signature} by signatures)"
            )
        return "\n".join(lines)


def describe_timings(timings: Timings) -> str:
    def shown(value: int | None) -> str:
        return "-" if value is None else f"{value} s"

    return (
        f"detect {shown(timings.detect)}, under_attack {shown(timings.under_attack)}, "
        f"normal {shown(timings.normal)} after the end, "
        f"incident closed {shown(timings.closed)} after the end; "
        f"peak rate {timings.peak_ratio:.1f}x the baseline"
    )


class _DataPlane:
    """The workers' side of a run: the mode effects and the challenge gate, each worker's telemetry, the
    origin. `serve()` takes one second's requests, `ship()` hands the workers' seconds to the loop."""

    def __init__(self, scenario: Scenario, tallies: list[PhaseTally]) -> None:
        traffic, section = scenario.traffic, scenario.settings.detector
        self.traffic = traffic
        self.tallies = tallies
        self.effects = ModeEffects(section)
        self.gate = Clearances()
        self._peer = _Peer()
        self._client = cast("ClientConnection", self._peer)
        self._origin_rng = random.Random(traffic.seed + 1)
        self.workers = []
        for number in range(traffic.workers):
            telemetry = WorkerTelemetry(scenario.settings, number, T0, None, lambda: WALL0)
            # Seeded, so that the sample (hence the signatures) is the same on every run.
            telemetry.counters = SecondCounters(
                number, T0, sample_size=section.sample_size, rng=random.Random(traffic.seed + 2 + number)
            )
            self.workers.append(telemetry)

    def serve(self, second: int) -> None:
        wall, now = WALL0 + second, T0 + second
        effects, phases = self.effects, self.traffic.phases
        signature_ids = {signature.id for signature in effects.state.signatures}
        load = 0.0
        to_origin: list[SecondCounters] = []
        for request in self.traffic.second(second):
            ip, prefix, worker = request.client
            tally = self.tallies[request.phase]
            tally.requests += 1
            outcome, decision = Outcome.ALLOW, ALLOW
            if effects.active:
                view = request_view(request.head, ip, prefix)
                stopped = effects.decide(view, self.gate, suspicious=False, now_wall=wall)
                if stopped is not None:
                    decision = stopped
                    tally.by_signature += stopped.rule in signature_ids
                    if stopped.action is Action.CHALLENGE:
                        outcome = Outcome.CHALLENGE
                        tally.challenged += 1
                        if phases[request.phase].pool.solves_challenges:
                            self.gate.cleared.add(ip)
                    else:
                        outcome = Outcome.BLOCK
                        tally.blocked += 1
            self._peer.client_ip = ip
            exchange = Exchange(self._client, request.head, now)
            exchange.outcome, exchange.decision = outcome, decision
            telemetry = self.workers[worker]
            telemetry.finished(exchange, prefix)
            if outcome is Outcome.ALLOW:
                tally.allowed += 1
                load += request.cost
                to_origin.append(telemetry.counters)
        latency, errors = self.traffic.origin.second(load)
        for counters in to_origin:
            counters.origin_start()
            counters.origin_done(503 if errors and self._origin_rng.random() < errors else 200, latency)

    def ship(self, loop: ControlLoop, now: float) -> None:
        for telemetry in self.workers:
            loop.receive(telemetry.counters.snapshot_and_reset(now).to_bytes())


def run(scenario: Scenario) -> Result:
    traffic, section = scenario.traffic, scenario.settings.detector
    loop = ControlLoop(
        detector_config(section),
        signatures=section.signatures,
        signature_ttl=section.signature_ttl,
        rng=random.Random(traffic.seed),
    )
    tallies = [PhaseTally() for _ in traffic.phases]
    result = Result(scenario.name, phases={p.name: t for p, t in zip(traffic.phases, tallies, strict=True)})
    plane = _DataPlane(scenario, tallies)
    for second in range(traffic.duration):
        plane.serve(second)
        t = second + 1
        plane.ship(loop, T0 + t)
        tick = loop.tick(T0 + t, WALL0 + t)
        _record(result, loop, tick.events, t)
        for incident in tick.closed:
            _seen_incident(result, incident.id).peak_mode = incident.peak_mode
        if tick.state is not None:
            plane.effects.apply(tick.state)
    if loop.detector.incident is not None:
        _seen_incident(result, loop.detector.incident.id).peak_mode = loop.detector.incident.peak_mode
    result.timings = _timings(result, traffic)
    return result


def _record(result: Result, loop: ControlLoop, events: list[Event], t: int) -> None:
    status = loop.detector.status()
    second = loop.last_second
    rps = 0.0 if second is None else second.rps
    result.ticks.append(
        TickRecord(
            t,
            loop.state.mode,
            status.level,
            rps,
            status.values.get("rps_ratio", 0.0),
            0 if second is None else second.legit,
            0 if second is None else second.mitigated,
            "; ".join(status.reasons),
        )
    )
    for event in events:
        if event.kind == EventKind.MODE and event.old is not None and event.new is not None:
            result.changes.append(
                ModeChange(t, event.old, event.new, event.reason, event.values.get("rps", rps))
            )
        elif event.kind == EventKind.INCIDENT_OPENED:
            result.incidents.append(SeenIncident(str(event.incident), t))
        elif event.kind == EventKind.INCIDENT_CLOSED:
            _seen_incident(result, str(event.incident)).closed = t
    current = loop.detector.incident
    if current is not None:
        seen = _seen_incident(result, current.id)
        seen.peak_rps = max(seen.peak_rps, rps)
    for signature in loop.state.signatures:
        found = result.signatures.get(signature.id)
        if found is None:
            found = result.signatures[signature.id] = SeenSignature(
                signature.id,
                dict(signature.conditions),
                signature.action,
                signature.coverage,
                signature.collateral,
                signature.describe(),
                t,
                t,
            )
        found.last, found.action = t, signature.action  # figures as first mined, action as last


def _seen_incident(result: Result, incident_id: str) -> SeenIncident:
    for incident in result.incidents:
        if incident.id == incident_id:
            return incident
    raise AssertionError(f"incident {incident_id} was never seen opening")


def _timings(result: Result, traffic: Traffic) -> Timings:
    measured = [phase for phase in traffic.phases if phase.measure]
    if not measured:
        return Timings(None, None, None, None, None, None)
    start, end = min(p.start for p in measured), max(p.end for p in measured)

    def first(after: int, holds: Callable[[TickRecord], bool]) -> int | None:
        for tick in result.ticks:
            if tick.t > after and holds(tick):
                return tick.t - after
        return None

    detect = first(start, lambda tick: tick.mode is not Mode.NORMAL)
    under_attack = first(start, lambda tick: tick.mode is Mode.UNDER_ATTACK)
    normal = None
    if detect is not None:
        normal = (
            0 if result.mode_at(end) is Mode.NORMAL else first(end, lambda tick: tick.mode is Mode.NORMAL)
        )
    closed = [inc.closed - end for inc in result.incidents if inc.closed is not None and inc.closed > end]
    peak = max((tick.rps_ratio for tick in result.ticks if start < tick.t <= end), default=0.0)
    return Timings(start, end, detect, under_attack, normal, min(closed) if closed else None, peak)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run one detector scenario and check its expectations.")
    parser.add_argument("folder", type=Path)
    parser.add_argument("--seconds", action="store_true", help="print every simulated second")
    args = parser.parse_args(argv)
    scenario = Scenario.load(args.folder)
    result = run(scenario)
    if args.seconds:
        for tick in result.ticks:
            print(
                f"t={tick.t:4d} {tick.mode:<12} level {tick.level} {tick.rps:7.0f} req/s "
                f"({tick.rps_ratio:4.1f}x) "
                f"legit {tick.legit:6d} mitigated {tick.mitigated:6d} {tick.reasons}"
            )
    print(result.summary())
    problems = scenario.expected.check(result)
    for problem in problems:
        print(f"FAILED: {problem}")
    if scenario.expected.xfail:
        print(f"(a known failure: {scenario.expected.xfail})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
