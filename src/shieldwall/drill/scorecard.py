"""The drill's verdict, per phase (before / during / after the attack): did visitors get through, how
fast, how much of the attack reached the origin, how busy the origin was.

Inputs are plain records: the visitors' `Outcome`s (bucketed by when each request started), and
`Mark`s taken at the phase boundaries — the attack's running `sent` count and the campaign site's
counters (GET /__drill/stats) at that instant — so a phase's figures are differences between two
marks. Everything here is sans-io and JSON-serialisable (`to_json`), and `render` prints several
setups (no shield, nginx, shieldwall) side by side as a plain-text table.

Definitions:
- legit success: share of legitimate requests answered 2xx/3xx (a solved challenge counts, with its
  solving time in the latency); latency percentiles are over the successful ones (nearest rank);
  the "steady" p95 leaves out the requests that needed a challenge solved: what a visitor who holds
  a clearance sees, which the targets compare with peacetime (a challenge is paid once);
- legit blocked: legitimate requests answered 403 or 429; challenged: those a solver had to solve;
  in the "before" phase both are peacetime false positives;
- leakage: attack requests that reached the origin / attack requests sent, in the phase (a request
  sent just before a mark may arrive just after it, so at high rates it can read a little above 100%);
- origin utilisation: worker-seconds in service / (workers * seconds), from the site's own clock;
- time to mitigate: from the attack's start to the end of the last interval between marks whose
  leakage was at or above the threshold (5%), when every later interval stays below it;
- time to recover: from the attack's end to the start of the first window (1 s) from which every
  window meets the peacetime bar (success ≥ 99%, steady p95 ≤ 2 * peacetime p95; or, route by
  route, each request within 2x its own route's peacetime p95 at the 95th percentile).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Final

from shieldwall.drill.campaign_site import OriginCounters
from shieldwall.drill.visitors import Outcome

BLOCKED_STATUSES: Final = frozenset({403, 429})
MITIGATED_BELOW: Final = 0.05
# A route's peacetime p95 under this (a cache hit answers in a millisecond) counts as this much: twice
# it, 100 ms, is a difference nobody notices, while a cache entry refreshed from the origin (a page's
# full 80 ms) would otherwise read as a visitor served at 80 times the peacetime latency.
MIN_ROUTE_P95: Final = 0.05


@dataclass(frozen=True)
class Mark:
    """The run at one instant (runtime clock): attack requests sent so far, and the origin's counters
    (None where there is no campaign site to ask)."""

    at: float
    attack_sent: int
    origin: OriginCounters | None


@dataclass(frozen=True)
class PhaseFigures:
    phase: str
    seconds: float
    legit_requests: int
    legit_ok: int
    legit_success: float | None
    legit_p50_ms: float | None
    legit_p95_ms: float | None
    legit_challenged: int
    legit_blocked: int
    attack_sent: int
    attack_at_origin: int | None
    leakage: float | None
    origin_utilisation: float | None
    origin_rejected: int | None  # answered 503 by the origin itself: its backlog was full
    legit_p95_steady_ms: float | None = None  # p95 of the successful requests that needed no challenge


@dataclass(frozen=True)
class Scorecard:
    """One setup's run of one scenario. The times are filled by the drill where it can measure them
    (time to detect needs the shield's mode history)."""

    setup: str
    scenario: str
    phases: tuple[PhaseFigures, ...]
    time_to_detect_s: float | None = None
    time_to_mitigate_s: float | None = None
    time_to_recover_s: float | None = None

    @property
    def peacetime_false_positives(self) -> int | None:
        """Legitimate requests challenged or blocked in the "before" phase."""
        for figures in self.phases:
            if figures.phase == "before":
                return figures.legit_challenged + figures.legit_blocked
        return None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["peacetime_false_positives"] = self.peacetime_false_positives
        return data


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank `q`th percentile (0 < q ≤ 100) of `values`, None when there are none."""
    if not values:
        return None
    if not 0 < q <= 100:
        raise ValueError("q must be within (0, 100]")
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def phase_figures(phase: str, start: Mark, end: Mark, outcomes: Iterable[Outcome]) -> PhaseFigures:
    """A phase's figures: the outcomes that started within [start.at, end.at), the marks' differences."""
    legit = [o for o in outcomes if start.at <= o.at < end.at]
    latencies = [o.latency for o in legit if o.ok]
    p50, p95 = percentile(latencies, 50), percentile(latencies, 95)
    steady = percentile([o.latency for o in legit if o.ok and not o.challenged], 95)
    attack_sent = end.attack_sent - start.attack_sent
    at_origin = utilisation = rejected = None
    if start.origin is not None and end.origin is not None and end.origin.elapsed_s > start.origin.elapsed_s:
        before, after = start.origin, end.origin
        at_origin = after.received.get("attack", 0) - before.received.get("attack", 0)
        seconds = after.elapsed_s - before.elapsed_s
        utilisation = (after.busy_s - before.busy_s) / (after.workers * seconds)
        rejected = sum(after.rejected.values()) - sum(before.rejected.values())
    return PhaseFigures(
        phase=phase,
        seconds=end.at - start.at,
        legit_requests=len(legit),
        legit_ok=len(latencies),
        legit_success=len(latencies) / len(legit) if legit else None,
        legit_p50_ms=None if p50 is None else p50 * 1000,
        legit_p95_ms=None if p95 is None else p95 * 1000,
        legit_challenged=sum(o.challenged for o in legit),
        legit_blocked=sum(o.status in BLOCKED_STATUSES for o in legit),
        attack_sent=attack_sent,
        attack_at_origin=at_origin,
        leakage=at_origin / attack_sent if at_origin is not None and attack_sent > 0 else None,
        origin_utilisation=utilisation,
        origin_rejected=rejected,
        legit_p95_steady_ms=None if steady is None else steady * 1000,
    )


def time_to_mitigate(
    marks: Sequence[Mark], attack_start: float, attack_end: float, threshold: float = MITIGATED_BELOW
) -> float | None:
    """Seconds from `attack_start` until leakage stayed below `threshold` for the rest of the attack,
    judged between consecutive marks (their spacing is the resolution); None if it never did, or if
    nothing measurable was sent."""
    intervals: list[tuple[float, float]] = []  # (end of interval, its leakage)
    for earlier, later in itertools.pairwise(marks):
        sent = later.attack_sent - earlier.attack_sent
        if earlier.at < attack_start or later.at > attack_end or sent <= 0:
            continue
        if earlier.origin is None or later.origin is None:
            continue
        leaked = later.origin.received.get("attack", 0) - earlier.origin.received.get("attack", 0)
        intervals.append((later.at, leaked / sent))
    if not intervals:
        return None
    mitigated_at = attack_start
    for end, leakage in intervals:
        if leakage >= threshold:
            mitigated_at = end
    if mitigated_at >= intervals[-1][0]:
        return None
    return mitigated_at - attack_start


def time_to_recover(
    outcomes: Iterable[Outcome],
    attack_end: float,
    run_end: float,
    peacetime_p95: float,
    *,
    window: float = 1.0,
    min_success: float = 0.99,
    p95_factor: float = 2.0,
    by_route: Mapping[str, float] | None = None,
) -> float | None:
    """Seconds from `attack_end` to the start of the first `window` after which every window (with
    any legitimate requests in it) has success ≥ `min_success` and a steady p95 latency (requests
    that needed no challenge) ≤ `p95_factor` * `peacetime_p95` (seconds); None if the last such
    window still falls short.

    With `by_route` (route_p95s of peacetime), each latency is first divided by its own route's
    peacetime p95 (`peacetime_p95` for a route not in it) and the window's p95 of those ratios must
    be ≤ `p95_factor`: a window that happens to hold a few searches, ten times a page's cost, is then
    not mistaken for a slow one."""
    if window <= 0:
        raise ValueError("window must be positive")
    count = max(0, math.ceil((run_end - attack_end) / window))
    buckets: list[list[Outcome]] = [[] for _ in range(count)]
    for outcome in outcomes:
        if attack_end <= outcome.at < run_end:
            buckets[min(count - 1, int((outcome.at - attack_end) // window))].append(outcome)
    recovered_from: float | None = 0.0
    for index, bucket in enumerate(buckets):
        if not bucket:
            continue
        ok = [o for o in bucket if o.ok]
        steady = [o for o in ok if not o.challenged]
        if by_route is None:
            p95, bar = percentile([o.latency for o in steady], 95), p95_factor * peacetime_p95
        else:
            ratios = [o.latency / by_route.get(route_of(o), peacetime_p95) for o in steady]
            p95, bar = percentile(ratios, 95), p95_factor
        good = len(ok) / len(bucket) >= min_success and bool(ok) and (p95 is None or p95 <= bar)
        if not good:
            recovered_from = None
        elif recovered_from is None:
            recovered_from = index * window
    return recovered_from


def route_of(outcome: Outcome) -> str:
    """A request's route for latency comparisons: its method and path, without the query."""
    return f"{outcome.method} {outcome.path.partition('?')[0]}"


def route_p95s(
    outcomes: Iterable[Outcome], start: float, end: float, min_samples: int = 5, floor: float = MIN_ROUTE_P95
) -> dict[str, float]:
    """The p95 latency (seconds) of each route's successful, unchallenged requests that started
    within [start, end), for the routes with at least `min_samples` of them; `floor` when lower."""
    latencies: dict[str, list[float]] = {}
    for outcome in outcomes:
        if start <= outcome.at < end and outcome.ok and not outcome.challenged:
            latencies.setdefault(route_of(outcome), []).append(outcome.latency)
    return {
        route: max(floor, percentile(values, 95) or 0.0)
        for route, values in latencies.items()
        if len(values) >= min_samples
    }


def slowdown_p95(
    outcomes: Iterable[Outcome], start: float, end: float, by_route: Mapping[str, float]
) -> float | None:
    """The p95 over the successful, unchallenged requests started within [start, end) of each one's
    latency divided by its route's peacetime p95 (`by_route`; routes without one are left out): how
    much slower than in peacetime visitors were served, not skewed by which pages they happened to ask."""
    ratios = [
        o.latency / by_route[route]
        for o in outcomes
        if start <= o.at < end and o.ok and not o.challenged and (route := route_of(o)) in by_route
    ]
    return percentile(ratios, 95)


def render(cards: Sequence[Scorecard]) -> str:
    """Several setups' scorecards side by side (one column each), phase by phase, as plain text."""
    if not cards:
        return ""
    phases = list(dict.fromkeys(f.phase for card in cards for f in card.phases))
    rows: list[tuple[str, str, list[str]]] = [("", "", [card.setup for card in cards])]
    for phase in phases:
        by_card = [next((f for f in card.phases if f.phase == phase), None) for card in cards]
        for label, cell in _PHASE_ROWS:
            rows.append(
                (phase if label == _PHASE_ROWS[0][0] else "", label, [_or_dash(cell, f) for f in by_card])
            )
    rows.append(("whole", "time to detect", [_seconds(card.time_to_detect_s) for card in cards]))
    rows.append(("", "time to mitigate", [_seconds(card.time_to_mitigate_s) for card in cards]))
    rows.append(("", "back to full speed", [_seconds(card.time_to_recover_s) for card in cards]))
    rows.append(("", "peacetime false positives", [_count(card.peacetime_false_positives) for card in cards]))
    first = max(len(row[0]) for row in rows)
    second = max(len(row[1]) for row in rows)
    widths = [max(len(row[2][i]) for row in rows) for i in range(len(cards))]
    lines = [f"scenario: {cards[0].scenario}"]
    for phase, label, cells in rows:
        left = f"{phase:<{first}}  {label:<{second}}"
        lines.append(
            (left + "".join(f"  {cell:>{width}}" for cell, width in zip(cells, widths, strict=True))).rstrip()
        )
    return "\n".join(lines) + "\n"


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"


def _seconds(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f} s"


def _count(value: int | None) -> str:
    return "—" if value is None else str(value)


def _or_dash(cell: Callable[[PhaseFigures], str], figures: PhaseFigures | None) -> str:
    return "—" if figures is None else cell(figures)


_PHASE_ROWS: Final[tuple[tuple[str, Callable[[PhaseFigures], str]], ...]] = (
    ("legit success", lambda f: f"{_percent(f.legit_success)} of {f.legit_requests}"),
    ("legit p50 / p95 ms", lambda f: f"{_ms(f.legit_p50_ms)} / {_ms(f.legit_p95_ms)}"),
    ("legit p95 ms without challenges", lambda f: _ms(f.legit_p95_steady_ms)),
    ("legit challenged / blocked", lambda f: f"{f.legit_challenged} / {f.legit_blocked}"),
    ("attack sent", lambda f: str(f.attack_sent)),
    ("attack leakage", lambda f: f"{_percent(f.leakage)} ({_count(f.attack_at_origin)})"),
    ("origin utilisation", lambda f: _percent(f.origin_utilisation)),
    ("origin 503s (backlog full)", lambda f: _count(f.origin_rejected)),
)
