"""One drill, end to end: for each setup (shieldwall, and the baselines asked for: the site exposed,
nginx with an admin's limits), start the campaign site and what stands in front of it, run visitors
through three phases — before, during and after the attack — and score each phase.

    before  visitors only: peacetime figures, and peacetime false positives for a shield
    during  the scenario runs (in a process of its own, attack_process.py) alongside the visitors
    after   visitors only again: how fast they are served as in peacetime, how the shield steps back

The legitimate population runs the whole time: browser-like visitors (visitors.Population: a few
behind one NAT address, a share without JavaScript who take the challenge's wait, the rest solving
it with challenge.solver), a verified crawler (crawler.py), or instead the operator's own log replayed
(replay.py). Every `mark_every` seconds a `Mark` records the attack's requests sent and the site's
counters, the shield's control state is polled (modewatch.py), and the view gets a `Tick`.

Setups run one after the other with a fresh site each, so they compete for nothing but the
machine. Every loop is bounded: the phases by their seconds, the scenario by its own bounds, the
attack process by a deadline after which it is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import time
from collections import Counter
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import uvloop

from shieldwall.detector.events import Mode
from shieldwall.drill import attacks, crawler, scenarios
from shieldwall.drill.attack_process import AttackProcess
from shieldwall.drill.campaign_site import SiteSettings, read_counters
from shieldwall.drill.client import Target
from shieldwall.drill.live import Tick, View
from shieldwall.drill.loopback import require_loopback
from shieldwall.drill.modewatch import ModeWatch
from shieldwall.drill.processes import StartError
from shieldwall.drill.replay import LogEntry, Replay
from shieldwall.drill.reports import incident_ids
from shieldwall.drill.runtime import Bounds, Budget, Runtime
from shieldwall.drill.scorecard import (
    Mark,
    PhaseFigures,
    Scorecard,
    percentile,
    phase_figures,
    route_p95s,
    slowdown_p95,
    time_to_mitigate,
    time_to_recover,
)
from shieldwall.drill.solving import ChallengeSolver
from shieldwall.drill.stack import Stack, nginx_available
from shieldwall.drill.visitors import Population, VisitLog

SHIELDWALL: Final = "shieldwall"
NO_SHIELD: Final = "none"
NGINX: Final = "nginx"
BASELINES: Final = (NO_SHIELD, NGINX)
SETUP_TITLES: Final = {SHIELDWALL: "shieldwall", NO_SHIELD: "no shield", NGINX: "nginx limit_req"}
MAX_PHASE: Final = 600.0
MAX_VISITORS: Final = 2_000
REQUEST_TIMEOUT: Final = 10.0  # a visitor gives up on a request after this long
# Seconds per window when judging "back to full speed" (each request against its own route's
# peacetime p95): a 1-s window holds a dozen visitor requests, whose p95 is their slowest.
RECOVERY_WINDOW: Final = 2.0
ATTACK_GRACE: Final = 15.0
DEFAULT_ATTACK: Final = scenarios.AttackParams()
# 4 workers x 80 ms: 50 pages/s, so that 20x its capacity (1,000 requests/s) is within what one Python
# load generator sends on this 2-core machine while the shield and the site share it.
DEFAULT_SITE: Final = SiteSettings(
    workers=4, service_ms=80.0
)  # seconds past its own bounds after which the attack process is killed


@dataclass(frozen=True)
class DrillPlan:
    """Everything one drill does. `validate` bounds every figure (ValueError says which)."""

    scenario: str = "distributed-flood"
    attack: scenarios.AttackParams = DEFAULT_ATTACK
    before: float = 20.0
    after: float = 30.0
    site: SiteSettings = DEFAULT_SITE
    visitors: int = 40
    nojs_share: float = 0.1
    think_seconds: tuple[float, float] = (1.0, 4.0)
    with_crawler: bool = True
    replay: tuple[LogEntry, ...] = ()
    speedup: float = 1.0
    setups: tuple[str, ...] = (SHIELDWALL,)
    attach: str | None = None  # a running shield's URL (loopback), instead of starting one
    attach_site: str | None = None  # the campaign site behind it, for the origin's counters
    attach_state_dir: Path | None = None  # its state_dir, for the mode
    shield_config: Path | None = None
    hold: float = 10.0
    seed: int = 1
    mark_every: float = 0.5

    def validate(self) -> None:
        if self.scenario not in scenarios.SCENARIOS:
            raise ValueError(
                f"unknown scenario {self.scenario!r}; choose one of: {', '.join(scenarios.SCENARIOS)}"
            )
        self.attack.validate()
        if not 0 < self.before <= MAX_PHASE or not 0 < self.after <= MAX_PHASE:
            raise ValueError(f"--before and --after must be within (0, {MAX_PHASE:g}] seconds")
        if not 0 <= self.visitors <= MAX_VISITORS:
            raise ValueError(f"--visitors must be within 0..{MAX_VISITORS}")
        if not 0 <= self.nojs_share <= 1:
            raise ValueError("--nojs-share must be within 0..1")
        if not self.setups or len(set(self.setups)) != len(self.setups):
            raise ValueError("name each setup once")
        unknown = set(self.setups) - {SHIELDWALL, *BASELINES}
        if unknown:
            raise ValueError(f"unknown setup {sorted(unknown)}; --compare takes {', '.join(BASELINES)}")
        if self.attach is not None:
            require_loopback(self.attach)
            if self.setups != (SHIELDWALL,):
                raise ValueError("--attach drills the running shield only; --compare needs a site it starts")
            if self.shield_config is not None:
                raise ValueError("--attach and --shield-config exclude each other")
        if self.attach_site is not None:
            require_loopback(self.attach_site)
        if NGINX in self.setups and self.attach is None and not nginx_available():
            raise ValueError("--compare nginx: nginx is not installed (Debian: apt-get install nginx)")
        if self.site.workers < 1 or self.site.service_ms <= 0:
            raise ValueError("the site needs at least one worker and a positive service time")
        if not 0 < self.mark_every <= 5 or self.hold <= 0:
            raise ValueError("mark_every must be within (0, 5] and hold positive")

    @property
    def legit_scenario(self) -> bool:
        return self.scenario in scenarios.LEGIT_SCENARIOS


@dataclass
class SetupRun:
    """One setup's result: its scorecard and what else the drill saw."""

    setup: str
    card: Scorecard
    tally: dict[str, object]
    habits: dict[str, dict[str, dict[str, int]]]  # phase → habit → {"requests", "ok"}
    # phase → "503" / "timeout" / ... → the legitimate requests that failed so
    failures: dict[str, dict[str, int]]
    # per mark: seconds from the start, attack requests sent, attack and legit requests at the origin
    timeline: list[list[float]]
    solver: dict[str, int]
    modes: list[tuple[float, str]] | None = None  # (seconds from the start, mode); None: no shield to ask
    signatures: dict[str, str] = field(default_factory=dict)  # id → description, every one mined
    slowdown: dict[str, float | None] = field(default_factory=dict)  # phase → scorecard.slowdown_p95
    time_to_under_attack_s: float | None = None
    time_to_normal_s: float | None = None  # from the attack's end to the mode's last return to normal
    incidents: list[str] = field(default_factory=list)  # ids, in state_dir's incidents database
    state_dir: Path | None = None
    workdir: Path | None = None
    problems: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.card.to_json(),
            "time_to_under_attack_s": self.time_to_under_attack_s,
            "time_to_normal_s": self.time_to_normal_s,
            "attack": self.tally,
            "habits": self.habits,
            "legit_slowdown_p95": self.slowdown,
            "legit_failures": self.failures,
            "timeline": self.timeline,
            "challenges": self.solver,
            "modes": self.modes,
            "signatures": self.signatures,
            "incidents": self.incidents,
            "workdir": None if self.workdir is None else str(self.workdir),
            "problems": self.problems,
        }


class DrillError(RuntimeError):
    """A setup could not be run (a server did not start, the attack process failed)."""


# Called with a setup's result and its live servers' URLs (site, front) before they are stopped.
Linger = Callable[[SetupRun, str, str], None]


def run_drill(plan: DrillPlan, workdir: Path, view: View, linger: Linger | None = None) -> list[SetupRun]:
    """Every setup of `plan` in turn; their results in the plan's order. Raises DrillError.
    `linger`, when given, runs before each setup's servers stop (the demo's --keep-running)."""
    plan.validate()
    results = []
    for setup in plan.setups:
        view.event(f"── {SETUP_TITLES[setup]}: {plan.scenario}, {_describe(plan)}")
        if plan.attach is not None:
            workdir.mkdir(parents=True, exist_ok=True)
            results.append(_attached(plan, workdir, view))
        else:
            results.append(_run_setup(plan, setup, workdir / setup, view, linger))
    return results


def _describe(plan: DrillPlan) -> str:
    site = plan.site
    return (
        f"{plan.before:g} s before, {plan.attack.seconds:g} s of attack at {plan.attack.rate:g}/s from "
        f"{plan.attack.sources} sources, {plan.after:g} s after; site capacity {site.capacity_rps:g} pages/s "
        f"({site.workers} workers x {site.service_ms:g} ms)"
    )


def _attached(plan: DrillPlan, workdir: Path, view: View) -> SetupRun:
    assert plan.attach is not None
    attack = _make_attack(plan, plan.attach, workdir / "attack.log")
    state_dir = plan.attach_state_dir
    result = uvloop.run(
        _drive(
            plan,
            setup=f"{SHIELDWALL} (attached)",
            target_url=plan.attach,
            site_url=plan.attach_site,
            state_dir=state_dir,
            attack=attack,
            view=view,
        )
    )
    if state_dir is not None:
        result.state_dir, result.incidents = state_dir, incident_ids(state_dir)
    result.workdir = workdir
    return result


def _run_setup(plan: DrillPlan, setup: str, workdir: Path, view: View, linger: Linger | None) -> SetupRun:
    try:
        with Stack(workdir) as stack:
            site = stack.site(plan.site)
            site_url = f"http://{site.host}:{site.port}"
            state_dir: Path | None = None
            if setup == SHIELDWALL:
                shield = stack.shield(
                    site.port,
                    plan.site,
                    crawler_source=crawler.SOURCE,
                    hold=plan.hold,
                    config=plan.shield_config,
                )
                target_url, state_dir = shield.url, shield.state_dir
            elif setup == NGINX:
                front = stack.nginx(site.port)
                target_url = f"http://{front.host}:{front.port}"
            else:
                target_url = site_url
            attack = _make_attack(plan, target_url, workdir / "attack.log")
            result = uvloop.run(
                _drive(
                    plan,
                    setup=SETUP_TITLES[setup],
                    target_url=target_url,
                    site_url=site_url,
                    state_dir=state_dir,
                    attack=attack,
                    view=view,
                )
            )
            result.problems += [
                f"{child.name} exited by itself: see {child.log_path}" for child in stack.died()
            ]
            result.workdir = workdir
            if state_dir is not None:
                result.state_dir, result.incidents = state_dir, incident_ids(state_dir)
            if linger is not None:
                linger(result, site_url, target_url)
    except StartError as exc:
        raise DrillError(str(exc)) from None
    # The control process saves the open incident when it stops: only now is it complete.
    if state_dir is not None:
        result.incidents = incident_ids(state_dir)
    return result


def _make_attack(plan: DrillPlan, target_url: str, log_path: Path) -> AttackProcess | None:
    if plan.legit_scenario:
        return None
    return AttackProcess(
        scenarios.build(plan.scenario, plan.attack), target_url, log_path, timeout=REQUEST_TIMEOUT
    )


async def _drive(
    plan: DrillPlan,
    *,
    setup: str,
    target_url: str,
    site_url: str | None,
    state_dir: Path | None,
    attack: AttackProcess | None,
    view: View,
) -> SetupRun:
    try:
        drill = _Drill(
            plan,
            setup=setup,
            target_url=target_url,
            site_url=site_url,
            state_dir=state_dir,
            attack=attack,
            view=view,
        )
        return await drill.run()
    finally:
        if attack is not None:
            await attack.stop()


class _Drill:
    """One setup's three phases (see the module docstring)."""

    def __init__(
        self,
        plan: DrillPlan,
        *,
        setup: str,
        target_url: str,
        site_url: str | None,
        state_dir: Path | None,
        attack: AttackProcess | None,
        view: View,
    ) -> None:
        self.plan, self.setup, self.attack, self.view = plan, setup, attack, view
        self.runtime = Runtime.real(Target.parse(target_url), timeout=REQUEST_TIMEOUT)
        self.clock = self.runtime.clock
        self.site = None if site_url is None else Target.parse(site_url)
        self.watch = None if state_dir is None else ModeWatch(state_dir, self.clock)
        self.log = VisitLog()
        self.solver = ChallengeSolver(nojs_share=plan.nojs_share, seed=plan.seed)
        self.marks: list[Mark] = []
        self.phase, self.phase_ends = "before", 0.0
        self.started = self.clock.monotonic()
        self._lock = asyncio.Lock()
        self._seen = 0  # outcomes already shown in a tick
        self._donations = 0
        self._signatures = 0
        self._mode: Mode | None = None

    async def run(self) -> SetupRun:
        plan, clock = self.plan, self.clock
        total = plan.before + plan.attack.seconds + plan.after + ATTACK_GRACE
        legit_budget = Budget(Bounds(10**8, total), clock)
        legit = asyncio.gather(*self._legit_jobs(legit_budget))
        sampler = asyncio.ensure_future(self._sample())
        ready = asyncio.ensure_future(self.attack.start() if self.attack is not None else asyncio.sleep(0))
        try:
            first = await self._mark()
            await self._phase("before", plan.before)
            try:
                await ready
            except RuntimeError as exc:
                raise DrillError(str(exc)) from None
            start = await self._mark()
            self.view.event(f"[{start.at - self.started:5.1f}s] the attack starts: {plan.scenario}")
            tally = await self._attack_phase()
            end = await self._mark()
            self.view.event(f"[{end.at - self.started:5.1f}s] the attack is over; {tally.sent} requests sent")
            await self._phase("after", plan.after)
            final = await self._mark()
        finally:
            ready.cancel()
            sampler.cancel()
            legit.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await legit
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
        if self.watch is not None:
            self.watch.poll()
        return self._result(first, start, end, final, tally)

    def _legit_jobs(self, budget: Budget) -> list[Coroutine[Any, Any, object]]:
        plan = self.plan
        jobs: list[Coroutine[Any, Any, object]] = []
        if plan.replay:
            replay = Replay(plan.replay, plan.speedup, Bounds(10**8, budget.seconds_left()), self.solver)
            jobs.append(replay.run(self.runtime, log=self.log, within=budget))
        elif plan.visitors:
            population = Population(
                visitors=plan.visitors,
                seed=plan.seed,
                think_seconds=plan.think_seconds,
                bounds=Bounds(10**8, budget.seconds_left()),
                solve_challenge=self.solver,
            )
            jobs.append(population.run(self.runtime, log=self.log, within=budget))
        if plan.with_crawler:
            visiting = crawler.Crawler(bounds=Bounds(10**6, budget.seconds_left()))
            jobs.append(visiting.run(self.runtime, log=self.log, within=budget))
        return jobs

    async def _phase(self, name: str, seconds: float) -> None:
        self.phase, self.phase_ends = name, self.clock.monotonic() + seconds
        await asyncio.sleep(seconds)

    async def _attack_phase(self) -> attacks.Tally:
        plan = self.plan
        self.phase, self.phase_ends = "during", self.clock.monotonic() + plan.attack.seconds
        deadline = plan.attack.seconds + ATTACK_GRACE
        if self.attack is None:  # a legitimate crowd: scored with the visitors
            scenario = scenarios.build(plan.scenario, plan.attack)
            assert isinstance(scenario, attacks.FlashCrowd)
            crowd = dataclasses.replace(scenario, log=self.log, solve_challenge=self.solver)
            return await asyncio.wait_for(crowd.run(self.runtime), deadline)
        self.attack.go()
        try:
            return await self.attack.result(deadline)
        except (TimeoutError, RuntimeError) as exc:
            raise DrillError(str(exc) or "the attack process did not finish in time") from None

    def _attack_sent(self) -> int:
        return 0 if self.attack is None else self.attack.sent

    async def _mark(self) -> Mark:
        async with self._lock:
            counters = None if self.site is None else await read_counters(self.site)
            mark = Mark(self.clock.monotonic(), self._attack_sent(), counters)
            self.marks.append(mark)
            return mark

    async def _sample(self) -> None:
        while True:
            await asyncio.sleep(self.plan.mark_every)
            before = self.marks[-1] if self.marks else None
            mark = await self._mark()
            self._poll_shield(mark.at)
            self.view.tick(self._tick(before, mark))

    def _poll_shield(self, now: float) -> None:
        watch = self.watch
        if watch is None:
            return
        watch.poll()
        stamp = f"[{now - self.started:5.1f}s]"
        if watch.mode is not self._mode:
            if self._mode is not None:
                self.view.event(f"{stamp} the shield's mode: {self._mode.value} → {watch.mode.value}")
            self._mode = watch.mode
        for description in list(watch.signatures.values())[self._signatures :]:
            self.view.event(f"{stamp} signature mined: {description}")
        self._signatures = len(watch.signatures)

    def _tick(self, before: Mark | None, mark: Mark) -> Tick:
        fresh = self.log.outcomes[self._seen :]
        self._seen = len(self.log.outcomes)
        self._donations += sum(1 for o in fresh if o.ok and o.method == "POST" and o.path == "/donate")
        ok = [o for o in fresh if o.ok]
        seconds = max(1e-3, mark.at - before.at) if before is not None else self.plan.mark_every
        origin_legit = origin_attack = None
        if before is not None and before.origin is not None and mark.origin is not None:
            origin_legit = (mark.origin.received["legit"] - before.origin.received["legit"]) / seconds
            origin_attack = (mark.origin.received["attack"] - before.origin.received["attack"]) / seconds
        p95 = percentile([o.latency for o in ok], 95)
        return Tick(
            setup=self.setup,
            phase=self.phase,
            elapsed=mark.at - self.started,
            phase_left=max(0.0, self.phase_ends - mark.at),
            mode=None if self.watch is None else self.watch.mode.value,
            signatures=0 if self.watch is None else len(self.watch.signatures),
            legit_rps=len(fresh) / seconds,
            legit_success=len(ok) / len(fresh) if fresh else None,
            legit_p95_ms=None if p95 is None else p95 * 1000,
            attack_rps=(mark.attack_sent - (before.attack_sent if before else 0)) / seconds,
            origin_legit_rps=origin_legit,
            origin_attack_rps=origin_attack,
            donations=self._donations,
        )

    def _result(self, first: Mark, start: Mark, end: Mark, final: Mark, tally: attacks.Tally) -> SetupRun:
        outcomes = self.log.outcomes
        phases = (
            phase_figures("before", first, start, outcomes),
            phase_figures("during", start, end, outcomes),
            phase_figures("after", end, final, outcomes),
        )
        peace_p95 = phases[0].legit_p95_steady_ms
        recover = None
        routes = route_p95s(outcomes, first.at, start.at)
        if peace_p95 is not None:
            recover = time_to_recover(
                outcomes, end.at, final.at, peace_p95 / 1000, window=RECOVERY_WINDOW, by_route=routes
            )
        watch = self.watch
        mitigate = None
        if not self.plan.legit_scenario:  # judged over the attack's own seconds, not its stragglers'
            mitigate = time_to_mitigate(self.marks, start.at, start.at + self.plan.attack.seconds)
        card = Scorecard(
            setup=self.setup,
            scenario=tally.scenario,
            phases=phases,
            time_to_detect_s=None if watch is None else watch.first(start.at),
            time_to_mitigate_s=mitigate,
            time_to_recover_s=recover,
        )
        result = SetupRun(
            setup=self.setup,
            card=card,
            tally=tally.to_json(),
            habits=_habits(phases, outcomes, (first, start, end, final)),
            failures=_failures(phases, outcomes, (first, start, end, final)),
            timeline=[
                [
                    round(mark.at - self.started, 2),
                    mark.attack_sent,
                    *((mark.origin.received["attack"], mark.origin.received["legit"]) if mark.origin else ()),
                ]
                for mark in self.marks
            ],
            solver={"solved": self.solver.solved, "waited": self.solver.waited, "failed": self.solver.failed},
        )
        result.slowdown = {
            figures.phase: slowdown_p95(outcomes, begin.at, until.at, routes)
            for figures, (begin, until) in zip(
                phases, itertools.pairwise((first, start, end, final)), strict=True
            )
        }
        if watch is not None:
            result.modes = [(round(at - self.started, 3), mode.value) for at, mode in watch.history]
            result.signatures = dict(watch.signatures)
            result.time_to_under_attack_s = watch.first(start.at, at_least=Mode.UNDER_ATTACK)
            result.time_to_normal_s = watch.back_to_normal(end.at)
        if self.log.dropped:
            result.problems.append(
                f"{self.log.dropped} visitor outcomes beyond the log's bound were not scored"
            )
        return result


def _habits(
    phases: Sequence[PhaseFigures], outcomes: Sequence[Any], marks: Sequence[Mark]
) -> dict[str, dict[str, dict[str, int]]]:
    """Per phase and habit (reader, supporter, crawler, ...): requests and successes."""
    table: dict[str, dict[str, dict[str, int]]] = {}
    for figures, (start, end) in zip(phases, itertools.pairwise(marks), strict=True):
        requests: Counter[str] = Counter()
        ok: Counter[str] = Counter()
        for outcome in outcomes:
            if start.at <= outcome.at < end.at:
                requests[outcome.habit] += 1
                ok[outcome.habit] += outcome.ok
        table[figures.phase] = {
            habit: {"requests": requests[habit], "ok": ok[habit]} for habit in sorted(requests)
        }
    return table


def _failures(
    phases: Sequence[PhaseFigures], outcomes: Sequence[Any], marks: Sequence[Mark]
) -> dict[str, dict[str, int]]:
    """Per phase: the legitimate requests that failed, by status (or error when there was none)."""
    table: dict[str, dict[str, int]] = {}
    for figures, (start, end) in zip(phases, itertools.pairwise(marks), strict=True):
        why = Counter(
            str(o.status) if o.status else o.error or "no answer"
            for o in outcomes
            if start.at <= o.at < end.at and not o.ok
        )
        table[figures.phase] = dict(why.most_common())
    return table


def wall_clock_label() -> str:
    """UTC date and time, for the JSON report."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
