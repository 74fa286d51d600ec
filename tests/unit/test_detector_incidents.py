"""Incidents: ids from wall time, a series that stays bounded however long the attack, a capped timeline,
open/close on the mode, and a JSON round trip."""

from __future__ import annotations

import calendar

from shieldwall.detector.config import DetectorConfig
from shieldwall.detector.events import Event, EventKind, Mode
from shieldwall.detector.incidents import Incident, IncidentTracker, Point, Series, incident_id

WALL = float(calendar.timegm((2024, 6, 12, 19, 30, 5)))


def point(offset: float, mode: Mode = Mode.UNDER_ATTACK, legit: int = 50, mitigated: int = 5000) -> Point:
    return Point(WALL + offset, 1, legit, mitigated, 0.02 + offset / 1e6, 300.0 + offset, mode)


def test_incident_ids_come_from_utc_wall_time() -> None:
    assert incident_id(WALL) == "INC-20240612-193005"


def test_the_series_keeps_every_second_for_the_first_hour_then_stays_bounded() -> None:
    series = Series(fine_limit=3600, coarse_limit=100, coarse_width=60)
    total_seconds = 3 * 24 * 3600  # a three-day attack
    for second in range(total_seconds):
        series.append(point(second))
    assert series.fine == 3600
    assert all(p.seconds == 1 for p in series.points[:3600])
    coarse = series.points[3600:]
    assert len(coarse) <= 100
    assert sum(p.seconds for p in series.points) == total_seconds
    assert sum(p.mitigated for p in series.points) == 5000 * total_seconds
    assert series.coarse_width >= (total_seconds - 3600) // 100
    assert [p.wall for p in coarse] == sorted(p.wall for p in coarse)
    # Peaks survive downsampling.
    assert coarse[-1].distinct_clients == 300.0 + total_seconds - 1


def test_a_downsampled_point_keeps_the_highest_mode() -> None:
    series = Series(fine_limit=0, coarse_limit=10, coarse_width=60)
    for second in range(60):
        series.append(point(second, Mode.UNDER_ATTACK if second == 30 else Mode.ELEVATED))
    assert len(series.points) == 1 and series.points[0].mode is Mode.UNDER_ATTACK


def tracker(hold: float = 30.0, preroll: int = 5, max_timeline: int = 100) -> IncidentTracker:
    return IncidentTracker(
        DetectorConfig(hold=hold, incident_preroll=preroll, incident_max_timeline=max_timeline)
    )


def escalate(at: float, old: Mode, new: Mode) -> Event:
    return Event(EventKind.MODE, at, WALL + at, old, new, "flood", {"rps": 5000.0})


def test_an_incident_opens_on_leaving_normal_and_closes_after_a_calm_hold() -> None:
    incidents = tracker()
    for at in range(10):
        assert incidents.record([], Mode.NORMAL, at, WALL + at) == []
        assert incidents.second(point(at, Mode.NORMAL), 50.0, at, WALL + at) == []
    events = incidents.record([escalate(10, Mode.NORMAL, Mode.ELEVATED)], Mode.ELEVATED, 10, WALL + 10)
    assert [event.kind for event in events] == [EventKind.INCIDENT_OPENED, EventKind.MODE]
    incident = incidents.current
    assert incident is not None and incident.id == "INC-20240612-193015" and incident.opened == WALL + 10
    assert all(event.incident == incident.id for event in events)
    assert len(incident.series.points) == 5  # the preroll
    incidents.second(point(10), 5000.0, 10, WALL + 10)
    incidents.record([escalate(11, Mode.ELEVATED, Mode.UNDER_ATTACK)], Mode.UNDER_ATTACK, 11, WALL + 11)
    incidents.second(point(11), 5200.0, 11, WALL + 11)
    incidents.record([escalate(40, Mode.UNDER_ATTACK, Mode.NORMAL)], Mode.NORMAL, 40, WALL + 40)
    for at in range(40, 70):
        assert incidents.second(point(at, Mode.NORMAL), 50.0, at, WALL + at) == []
        incidents.record([], Mode.NORMAL, at + 1, WALL + at + 1)
    closing = incidents.second(point(70, Mode.NORMAL), 50.0, 70, WALL + 70)
    assert [event.kind for event in closing] == [EventKind.INCIDENT_CLOSED]
    assert incidents.current is None and list(incidents.closed) == [incident]
    assert incident.closed == WALL + 70
    assert incident.peak_mode is Mode.UNDER_ATTACK and incident.peak_rps == 5200.0
    assert [event.kind for event in incident.timeline] == [
        EventKind.INCIDENT_OPENED,
        EventKind.MODE,
        EventKind.MODE,
        EventKind.MODE,
        EventKind.INCIDENT_CLOSED,
    ]


def test_escalating_again_during_the_close_hold_keeps_the_same_incident() -> None:
    incidents = tracker(preroll=0)
    incidents.record([escalate(0, Mode.NORMAL, Mode.ELEVATED)], Mode.ELEVATED, 0, WALL)
    first = incidents.current
    incidents.record([escalate(5, Mode.ELEVATED, Mode.NORMAL)], Mode.NORMAL, 5, WALL + 5)
    for at in range(5, 20):
        incidents.second(point(at, Mode.NORMAL), 50.0, at, WALL + at)
    incidents.record([escalate(20, Mode.NORMAL, Mode.ELEVATED)], Mode.ELEVATED, 20, WALL + 20)
    for at in range(20, 60):
        assert incidents.second(point(at, Mode.ELEVATED), 50.0, at, WALL + at) == []
    assert incidents.current is first and not incidents.closed


def test_the_timeline_is_capped() -> None:
    incidents = tracker(max_timeline=3)
    incidents.record([escalate(0, Mode.NORMAL, Mode.ELEVATED)], Mode.ELEVATED, 0, WALL)
    note = Event("ban_wave", 1, WALL + 1, reason="120 addresses banned")
    for _ in range(5):
        incidents.record([note], Mode.ELEVATED, 1, WALL + 1)
    incident = incidents.current
    assert incident is not None and len(incident.timeline) == 3 and incident.timeline_dropped == 4


def test_an_incident_survives_json() -> None:
    incidents = tracker()
    for at in range(3):
        incidents.second(point(at, Mode.NORMAL), 50.0, at, WALL + at)
    incidents.record([escalate(3, Mode.NORMAL, Mode.UNDER_ATTACK)], Mode.UNDER_ATTACK, 3, WALL + 3)
    incidents.second(point(3), 5000.0, 3, WALL + 3)
    incident = incidents.current
    assert incident is not None
    assert Incident.from_json(incident.to_json()) == incident
