"""`ReportData`: everything a report says, computed once from an `Incident` and its `ReportFacts`, so
that every format (HTML, Markdown, JSON, STIX) states the same figures.

Some figures are estimates, made from the incident's per-second series, and each format says so:
- "usual rate": the detector's learned baseline at the first escalation (`rps_baseline` in the event's
  values), else the median rate of the calm seconds kept before the incident opened;
- the attack "began" at the first second of the loud run (each second at least `elevated_ratio` x the
  usual rate and `min_rps` above it, the detector's own default thresholds) that goes on to the second
  the incident opened, and "ended" at the end of the last such loud second; without a usual rate, it
  began when the incident opened and ended with the last second out of NORMAL;
- visitors were "slowed down" in every second whose origin p95 latency was above `latency_slo` (when
  the operator gave one), else above twice the usual latency and at least 100 ms more than it (a delay
  people notice); "full speed back" is the end of the last slow second, counted from the attack's start.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from statistics import median
from typing import Final

from shieldwall.detector.config import DetectorConfig
from shieldwall.detector.events import Event, EventKind, Mode
from shieldwall.detector.incidents import Incident, Point
from shieldwall.report import words
from shieldwall.report.facts import AN_OPERATOR, AUTOMATIC, Action, ReportFacts

_DETECTOR_DEFAULTS: Final = DetectorConfig()
NOTICEABLE_DELAY: Final = 0.1  # seconds of extra latency people notice
SLOW_FACTOR: Final = 2.0


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    """One line of the timeline: `by` is AUTOMATIC, a person, or "" for what was observed, not done."""

    at: float
    kind: str
    text: str
    by: str = ""
    values: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True, slots=True)
class Impact:
    """What real visitors went through (see the module docstring for the estimates)."""

    usual_legit_rps: float | None  # served per second before the attack
    legit_rps_during: float | None  # served per second while it lasted
    usual_latency: float | None  # origin p95 before the attack, seconds
    worst_latency: float
    slow_threshold: float | None
    slowed_seconds: float | None
    time_to_full_speed: float | None  # None: unknown, or not yet
    success_rate: float | None
    success_rate_before: float | None
    challenges_issued: int | None
    challenges_passed: int | None


@dataclass(frozen=True, slots=True)
class ReportData:
    incident_id: str
    generated: float  # when the report was made (given by the caller: same input, same report)
    started: float  # the attack began (estimate)
    detected: float  # the incident opened: the mode left NORMAL
    under_attack: float | None  # first switch to UNDER_ATTACK
    ended: float | None  # the attack traffic ended (estimate); None while the incident is open
    closed: float | None  # the shield's all-clear: NORMAL for the hold
    peak_mode: Mode
    peak_rps: float
    peak_mitigated_rps: float
    peak_distinct_clients: float
    peak_latency: float
    usual_rps: float | None
    requests: int  # every request the shield saw from `started` on
    mitigated: int  # of which refused, rate-limited, challenged or shed
    mode_seconds: tuple[tuple[Mode, float], ...]  # time in each mode from detection on
    points: tuple[Point, ...]  # the incident's series (copies)
    timeline: tuple[TimelineEntry, ...]
    timeline_dropped: int
    actions: tuple[Action, ...]
    impact: Impact
    facts: ReportFacts

    @property
    def ongoing(self) -> bool:
        return self.closed is None

    @property
    def attack_seconds(self) -> float | None:
        return None if self.ended is None else self.ended - self.started


def rate_of(point: Point) -> float:
    return (point.legit + point.mitigated) / point.seconds


def build_report(incident: Incident, facts: ReportFacts | None = None, *, generated: float) -> ReportData:
    facts = ReportFacts() if facts is None else facts
    points = tuple(replace(point) for point in incident.series.points)
    usual = _usual_rps(incident.timeline, points, incident.opened)
    started, ended = _attack_window(incident, points, usual)
    since_start = [point for point in points if point.wall >= started]
    modes: dict[Mode, float] = {}
    for point in points:
        if point.wall >= incident.opened:
            modes[point.mode] = modes.get(point.mode, 0.0) + point.seconds
    events = _event_entries(incident.timeline)
    actions = _actions(events, facts)
    return ReportData(
        incident_id=incident.id,
        generated=generated,
        started=started,
        detected=incident.opened,
        under_attack=next(
            (e.wall for e in incident.timeline if e.kind == EventKind.MODE and e.new is Mode.UNDER_ATTACK),
            None,
        ),
        ended=ended,
        closed=incident.closed,
        peak_mode=incident.peak_mode,
        peak_rps=incident.peak_rps,
        peak_mitigated_rps=max((point.mitigated / point.seconds for point in points), default=0.0),
        peak_distinct_clients=incident.peak_distinct_clients,
        peak_latency=incident.peak_latency_p95,
        usual_rps=usual,
        requests=sum(point.legit + point.mitigated for point in since_start),
        mitigated=sum(point.mitigated for point in since_start),
        mode_seconds=tuple(sorted(modes.items(), key=lambda item: -item[0].level)),
        points=points,
        timeline=_timeline(events, facts),
        timeline_dropped=incident.timeline_dropped,
        actions=actions,
        impact=_impact(points, started, ended, incident, facts),
        facts=facts,
    )


def _usual_rps(timeline: Iterable[Event], points: Sequence[Point], opened: float) -> float | None:
    for event in timeline:
        baseline = event.values.get("rps_baseline")
        if baseline is not None:
            return baseline
    before = [rate_of(point) for point in points if point.wall < opened]
    return median(before) if before else None


def _loud(usual: float) -> float:
    """The rate from which a second counts as part of the attack."""
    return max(_DETECTOR_DEFAULTS.elevated_ratio * usual, usual + _DETECTOR_DEFAULTS.min_rps)


def _attack_window(
    incident: Incident, points: Sequence[Point], usual: float | None
) -> tuple[float, float | None]:
    opened = incident.opened
    at_open = [index for index, point in enumerate(points) if point.wall <= opened]
    if usual is None or not at_open:
        started = opened
        loud = [point for point in points if point.mode is not Mode.NORMAL]
    else:
        threshold = _loud(usual)
        index = at_open[-1]
        if rate_of(points[index]) >= threshold:
            while index > 0 and rate_of(points[index - 1]) >= threshold:
                index -= 1
        started = min(points[index].wall, opened)
        loud = [point for point in points if point.wall >= started and rate_of(point) >= threshold]
        loud = loud or [point for point in points if point.mode is not Mode.NORMAL]
    if incident.closed is None:
        return started, None
    ended = loud[-1].wall + loud[-1].seconds if loud else opened
    return started, max(ended, started)


def _impact(
    points: Sequence[Point], started: float, ended: float | None, incident: Incident, facts: ReportFacts
) -> Impact:
    before = [point for point in points if point.wall < started]
    during = [point for point in points if point.wall >= started and (ended is None or point.wall < ended)]
    latencies = [point.latency_p95 for point in before if point.latency_p95 > 0]
    usual_latency = median(latencies) if latencies else None
    threshold = facts.latency_slo
    if threshold is None and usual_latency is not None:
        threshold = max(SLOW_FACTOR * usual_latency, usual_latency + NOTICEABLE_DELAY)
    slowed_seconds = time_to_full_speed = None
    if threshold is not None:
        slow = [point for point in points if point.wall >= started and point.latency_p95 > threshold]
        slowed_seconds = float(sum(point.seconds for point in slow))
        if not slow:
            time_to_full_speed = 0.0
        elif incident.closed is not None or slow[-1] is not points[-1]:
            time_to_full_speed = slow[-1].wall + slow[-1].seconds - started
    during_seconds = sum(point.seconds for point in during)
    impact = facts.impact
    return Impact(
        usual_legit_rps=median(p.legit / p.seconds for p in before) if before else None,
        legit_rps_during=sum(p.legit for p in during) / during_seconds if during_seconds else None,
        usual_latency=usual_latency,
        worst_latency=max((point.latency_p95 for point in points if point.wall >= started), default=0.0),
        slow_threshold=threshold,
        slowed_seconds=slowed_seconds,
        time_to_full_speed=time_to_full_speed,
        success_rate=impact.success_rate,
        success_rate_before=impact.success_rate_before,
        challenges_issued=impact.challenges_issued,
        challenges_passed=impact.challenges_passed,
    )


def _mode(mode: Mode | None) -> str:
    return "?" if mode is None else words.MODE_WORDS[mode]


def _event_entries(timeline: Sequence[Event]) -> list[TimelineEntry]:
    """The incident's events in words. A mode change that a pin or an unpin caused is the operator's."""
    entries = []
    caused_by = AUTOMATIC
    for index, event in enumerate(timeline):
        kind, reason = str(event.kind), event.reason
        text, by = reason or kind, ""
        if kind == EventKind.INCIDENT_OPENED:
            text, by = f"Incident opened: the shield switched from normal to {_mode(event.new)}", AUTOMATIC
        elif kind == EventKind.MODE:
            previous = timeline[index - 1] if index else None
            pinned = previous is not None and previous.at == event.at and previous.kind in _PIN_KINDS
            by = caused_by if pinned else AUTOMATIC
            text = f"Mode {_mode(event.old)} → {_mode(event.new)}" + (f": {reason}" if reason else "")
        elif kind == EventKind.AUTO_MODE:
            text = f"Traffic alone would now call for {_mode(event.new)} ({reason}); the operator's pin holds"
        elif kind == EventKind.PIN:
            text, by = f"An operator pinned the mode: {reason}", AN_OPERATOR
        elif kind == EventKind.UNPIN:
            expired = reason == "pin expired"
            by = AUTOMATIC if expired else AN_OPERATOR
            text = "The operator's pin expired" if expired else "An operator removed the pin"
        elif kind == EventKind.INCIDENT_CLOSED:
            text, by = f"Incident closed: {reason}" if reason else "Incident closed", AUTOMATIC
        elif reason:
            text = f"{kind}: {reason}"
        if kind in _PIN_KINDS:
            caused_by = by
        values = tuple(sorted(event.values.items()))
        entries.append(TimelineEntry(event.wall, kind, text, by, values))
    return entries


_PIN_KINDS: Final = (EventKind.PIN, EventKind.UNPIN)


def _fact_actions(facts: ReportFacts) -> list[tuple[str, Action]]:
    """Actions the facts record beyond the incident's own events, each with its timeline kind:
    signatures put in force, bans, what people did."""
    actions = []
    for record in facts.signatures:
        verb = "Blocked" if record.signature.action == "block" else "Challenged"
        what = f"{verb} requests matching signature {record.id}: {record.description}"
        actions.append(("signature", Action(record.first_seen, what, record.decided_by)))
    automatic = [ban for ban in facts.bans if ban.source == "auto"]
    if automatic:
        first = min(ban.since for ban in automatic)
        banned = words.plural(len(automatic), "client address", "client addresses")
        actions.append(("ban", Action(first, f"Banned {banned} that kept being refused", AUTOMATIC)))
    for ban in facts.bans:
        if ban.source == "manual":
            until = "until removed" if ban.until is None else f"until {words.utc(ban.until)}"
            reason = f": {ban.reason}" if ban.reason else ""
            actions.append(("ban", Action(ban.since, f"Banned {ban.target} {until}{reason}", AN_OPERATOR)))
    return actions + [("action", action) for action in facts.actions]


def _actions(events: Iterable[TimelineEntry], facts: ReportFacts) -> tuple[Action, ...]:
    done = [
        Action(entry.at, entry.text, entry.by)
        for entry in events
        if entry.by and entry.kind in (EventKind.MODE, EventKind.PIN, EventKind.UNPIN)
    ]
    done += [action for _, action in _fact_actions(facts)]
    return tuple(sorted(done, key=lambda action: (action.at, action.what)))


def _timeline(events: list[TimelineEntry], facts: ReportFacts) -> tuple[TimelineEntry, ...]:
    """The incident's events and the facts' actions, by time (events first and in their recorded order
    at the same second)."""
    entries = events + [
        TimelineEntry(action.at, kind, action.what, action.by) for kind, action in _fact_actions(facts)
    ]
    ranked = sorted(enumerate(entries), key=lambda item: (item[1].at, item[0]))
    return tuple(entry for _, entry in ranked)
