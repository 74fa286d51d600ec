"""Inputs for the alert tests: the recorded incident of the report tests (tests/fixtures/report), its
timeline replayed tick by tick, and small event makers."""

from __future__ import annotations

from itertools import groupby
from pathlib import Path

from shieldwall.alerts.policy import AlertKind, AlertPolicy, Delivery
from shieldwall.detector.events import Event, EventKind, Mode
from shieldwall.detector.incidents import Incident

RECORDED = Path(__file__).parent.parent / "fixtures" / "report" / "incident.json"
ALL_KINDS = tuple(AlertKind)


def recorded_incident() -> Incident:
    return Incident.from_json(RECORDED.read_text(encoding="utf-8"))


def ticks(incident: Incident) -> list[tuple[float, list[Event]]]:
    """The timeline as the control loop's ticks gave it: events grouped by their monotonic time."""
    return [(at, list(batch)) for at, batch in groupby(incident.timeline, key=lambda event: event.at)]


def replay(policy: AlertPolicy, incident: Incident) -> list[Delivery]:
    """Every delivery the policy makes over the incident, its closed incident given on the last tick."""
    deliveries = []
    for at, batch in ticks(incident):
        closed = [incident] if any(e.kind == EventKind.INCIDENT_CLOSED for e in batch) else []
        deliveries += policy.observe(batch, closed, at)
    return deliveries


def mode_change(old: Mode, new: Mode, at: float, incident: str | None = "INC-1", reason: str = "") -> Event:
    return Event(EventKind.MODE, at, 1_718_000_000.0 + at, old, new, reason, {}, incident)


def opened(new: Mode, at: float, incident: str = "INC-1") -> Event:
    return Event(
        EventKind.INCIDENT_OPENED,
        at,
        1_718_000_000.0 + at,
        Mode.NORMAL,
        new,
        "mode left normal",
        {},
        incident,
    )
