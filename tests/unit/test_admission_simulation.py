"""Admission control against a model origin under a flood: discrete-event simulation, seeded, no sleeps.

The model origin works on any number of requests at once, but has capacity for C: a request that starts
while n are in progress takes `base * max(1, n / C)` (±20%), so beyond C requests only get slower and the
origin's throughput stays at C / base. Requests arrive as a Poisson process at `load * C / base`; the
data plane's sweeper (expire) runs every 0.5 s as it does in the real one.
"""

from __future__ import annotations

import heapq
import random
import statistics
from dataclasses import dataclass, field
from typing import cast

from shieldwall.admission.controller import AdmissionController, AdmissionSettings, Ticket, TicketState
from shieldwall.admission.limits import AimdLimit
from shieldwall.admission.priority import Priority

BASE = 0.05  # seconds: the origin's uncongested service time
TARGET = 1.5 * BASE  # what the operator accepts
MIX = (0.2, 0.3, 0.3, 0.2)  # CRITICAL, CLEARED, NORMAL, SUSPICIOUS
SWEEP = 0.5


@dataclass
class Run:
    tickets: list[Ticket] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)  # of admitted requests, after warm-up
    limits: list[tuple[float, int]] = field(default_factory=list)  # (time, limit) at each sweep
    completed: int = 0  # after warm-up

    def success(self, priority: Priority, since: float = 0.0) -> float:
        """Of the requests of this class that arrived from `since` on and were decided (not still
        queued at the end), the share that reached the origin."""
        mine = [
            t
            for t in self.tickets
            if t.priority is priority and t.arrived >= since and t.state is not TicketState.QUEUED
        ]
        reached = sum(t.state in (TicketState.ADMITTED, TicketState.RELEASED) for t in mine)
        return reached / len(mine)

    def limits_between(self, start: float, end: float) -> list[int]:
        return [limit for at, limit in self.limits if start <= at < end]


def simulate(capacity: dict[float, int], duration: float, load: float, seed: int, warm_up: float) -> Run:
    """`capacity`: the origin's C from each time on (e.g. {0: 20, 10: 10}); load in multiples of the
    throughput C / base at the start."""
    rnd = random.Random(seed)
    ctl = AdmissionController(
        AimdLimit(latency_target=TARGET, initial=10, min_limit=2, max_limit=1000), AdmissionSettings()
    )
    rate = load * capacity[0] / BASE
    changes = sorted(capacity.items())
    events: list[tuple[float, int, str, object]] = []
    run, seq = Run(), 0

    def at(when: float, kind: str, what: object = None) -> None:
        nonlocal seq
        seq += 1
        heapq.heappush(events, (when, seq, kind, what))

    def origin_capacity(now: float) -> int:
        return [c for since, c in changes if since <= now][-1]

    def start(ticket: Ticket, now: float) -> None:
        service = BASE * max(1.0, ctl.in_flight / origin_capacity(now)) * rnd.uniform(0.8, 1.2)
        at(now + service, "done", (ticket, service))

    at(rnd.expovariate(rate), "arrive")
    at(SWEEP, "sweep")
    while events:
        now, _, kind, what = heapq.heappop(events)
        if now >= duration:
            break
        if kind == "arrive":
            priority = rnd.choices(list(Priority), MIX)[0]
            ticket, _ = ctl.try_admit(priority, now)
            run.tickets.append(ticket)
            if ticket.state is TicketState.ADMITTED:
                start(ticket, now)
            at(now + rnd.expovariate(rate), "arrive")
        elif kind == "done":
            ticket, service = cast(tuple[Ticket, float], what)
            if now >= warm_up:
                run.latencies.append(service)
                run.completed += 1
            for waiter in ctl.release(ticket, service, True, now):
                start(waiter, now)
        else:
            ctl.expire(now)
            run.limits.append((now, ctl.limit))
            at(now + SWEEP, "sweep")
    return run


def test_a_flood_of_five_times_capacity_leaves_critical_traffic_flowing() -> None:
    c, warm_up, duration = 20, 5.0, 30.0
    run = simulate({0: c}, duration, load=5.0, seed=7, warm_up=warm_up)
    # CRITICAL (a fifth of the flood: as much as the origin can serve) gets through; the lowest first go
    critical, cleared, normal, suspicious = (run.success(p, since=warm_up) for p in Priority)
    assert critical >= 0.99
    assert critical > cleared >= normal >= suspicious
    assert suspicious < 0.01
    # the origin is kept busy but not overloaded: near its capacity, at near its uncongested latency
    assert run.completed / (duration - warm_up) >= 0.95 * c / BASE
    assert statistics.mean(run.latencies) <= TARGET * 1.1
    assert sorted(run.latencies)[int(0.99 * len(run.latencies))] <= 2 * BASE * 1.2
    limits = run.limits_between(warm_up, duration)
    assert 0.5 * c <= min(limits) and max(limits) <= 2 * c


def test_the_limit_follows_the_origin_when_its_capacity_halves_and_comes_back() -> None:
    run = simulate({0: 40, 10: 20, 20: 40}, 30.0, load=3.0, seed=11, warm_up=3.0)
    for start, c in ((5.0, 40), (15.0, 20), (25.0, 40)):  # the second half of each phase
        limits = run.limits_between(start, start + 5)
        assert 0.5 * c <= min(limits) and max(limits) <= 2 * c, (c, limits)
    assert max(run.limits_between(15, 20)) < min(run.limits_between(5, 10))
    assert statistics.mean(run.latencies) <= TARGET * 1.1
    assert run.success(Priority.CRITICAL) >= 0.99


def test_the_simulation_is_deterministic() -> None:
    one = simulate({0: 10}, 5.0, load=5.0, seed=3, warm_up=1.0)
    two = simulate({0: 10}, 5.0, load=5.0, seed=3, warm_up=1.0)
    assert one.limits == two.limits and one.latencies == two.latencies
