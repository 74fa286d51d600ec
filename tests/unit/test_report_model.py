"""ReportData from a real detector incident: when the attack began, was detected, ended; who did what;
what visitors went through; and the estimates' fallbacks when the incident lacks a calm pre-roll or is
still open."""

from __future__ import annotations

from dataclasses import replace

import pytest
from report_sample import detector_incident, hour_incident, sample_facts
from test_detector_detector import WALL0

from shieldwall.detector.events import Event, EventKind, Mode
from shieldwall.detector.incidents import Incident, Point, Series
from shieldwall.report.facts import AN_OPERATOR, AUTOMATIC, ReportFacts
from shieldwall.report.model import ReportData, build_report


@pytest.fixture(scope="module")
def incident() -> Incident:
    return detector_incident()


@pytest.fixture(scope="module")
def data(incident: Incident) -> ReportData:
    return build_report(incident, sample_facts(incident), generated=incident.closed or 0.0)


def test_the_attack_is_placed_in_time_from_the_series(incident: Incident, data: ReportData) -> None:
    # The flood's first second is the one before the incident opened (ELEVATED on its 2nd second).
    assert data.started == incident.opened - 1
    assert data.detected == incident.opened
    assert data.under_attack == incident.opened + 1
    assert data.ended == data.started + 120  # 120 flood seconds
    assert data.closed == incident.closed
    assert data.attack_seconds == 120
    assert not data.ongoing
    assert data.usual_rps is not None and 45 < data.usual_rps < 55
    assert dict(data.mode_seconds)[Mode.UNDER_ATTACK] >= 120
    assert data.requests == sum(
        p.legit + p.mitigated for p in incident.series.points if p.wall >= data.started
    )
    assert 0.9 < data.mitigated / data.requests < 1.0


def test_impact_counts_the_slow_seconds_and_the_time_to_full_speed(data: ReportData) -> None:
    impact = data.impact
    assert impact.usual_latency is not None and 0.02 < impact.usual_latency < 0.05
    assert impact.slow_threshold == pytest.approx(impact.usual_latency + 0.1)
    assert impact.slowed_seconds == 4  # the four seconds the origin answered in 0.9 s
    assert impact.time_to_full_speed == 4
    assert impact.worst_latency > 0.8
    assert impact.success_rate == 0.991 and impact.challenges_passed == 1200
    assert impact.usual_legit_rps is not None and 45 < impact.usual_legit_rps < 55


def test_an_operators_latency_slo_decides_what_is_slow(incident: Incident) -> None:
    data = build_report(incident, ReportFacts(latency_slo=2.0), generated=0.0)
    assert data.impact.slow_threshold == 2.0
    assert data.impact.slowed_seconds == 0 and data.impact.time_to_full_speed == 0


def test_actions_say_who_did_them(data: ReportData) -> None:
    by = {action.what.split(":")[0]: action.by for action in data.actions}
    assert by["Mode normal → elevated (on guard)"] == AUTOMATIC
    assert by["An operator pinned the mode"] == AN_OPERATOR
    assert by["The operator's pin expired"] == AUTOMATIC
    assert by["Called the hosting provider to warn them"] == "Jane Doe"
    assert by["Banned 198.51.100.0/24 until removed"] == AN_OPERATOR
    assert by["Banned 3 client addresses that kept being refused"] == AUTOMATIC
    challenged = [a for a in data.actions if a.what.startswith("Challenged requests matching signature")]
    assert [a.by for a in challenged] == ["jane"]
    assert [a.at for a in data.actions] == sorted(a.at for a in data.actions)


def test_a_mode_change_caused_by_a_pin_is_the_operators() -> None:
    events = [
        Event(EventKind.INCIDENT_OPENED, 1.0, WALL0 + 1, Mode.NORMAL, Mode.UNDER_ATTACK),
        Event(EventKind.PIN, 1.0, WALL0 + 1, Mode.NORMAL, Mode.UNDER_ATTACK, "pinned under_attack"),
        Event(EventKind.MODE, 1.0, WALL0 + 1, Mode.NORMAL, Mode.UNDER_ATTACK, "pinned under_attack"),
        Event(EventKind.UNPIN, 9.0, WALL0 + 9, Mode.UNDER_ATTACK, Mode.NORMAL, "unpinned"),
        Event(EventKind.MODE, 9.0, WALL0 + 9, Mode.UNDER_ATTACK, Mode.NORMAL, "unpinned"),
        Event(EventKind.MODE, 12.0, WALL0 + 12, Mode.NORMAL, Mode.ELEVATED, "flood"),
        Event("note", 13.0, WALL0 + 13, reason="called the ISP"),
    ]
    incident = Incident("INC-1", WALL0 + 1, Series(10, 10, 60), timeline=events)
    data = build_report(incident, generated=WALL0 + 20)
    assert [(entry.kind, entry.by) for entry in data.timeline] == [
        ("incident_opened", AUTOMATIC),
        ("pin", AN_OPERATOR),
        ("mode", AN_OPERATOR),
        ("unpin", AN_OPERATOR),
        ("mode", AN_OPERATOR),
        ("mode", AUTOMATIC),
        ("note", ""),  # observed, not done
    ]
    assert data.timeline[-1].text == "note: called the ISP"


def test_facts_actions_fall_in_time_order_among_the_events(data: ReportData) -> None:
    walls = [entry.at for entry in data.timeline]
    assert walls == sorted(walls)
    kinds = [entry.kind for entry in data.timeline]
    assert kinds[0] == "incident_opened" and kinds[-1] == "incident_closed"
    assert {"signature", "ban", "action", "pin", "unpin"} <= set(kinds)


def test_an_open_incident_has_no_end_and_no_full_speed_while_still_slow() -> None:
    incident = hour_incident(seconds=600)
    cut = incident.series.points[:60]  # 30 s pre-roll, then the attack's first 30 s: still slow
    still_open = replace(
        incident, series=Series(3600, 10, 60, [replace(p) for p in cut], len(cut)), closed=None, timeline=[]
    )
    data = build_report(still_open, generated=cut[-1].wall + 1)
    assert data.ongoing and data.ended is None and data.attack_seconds is None
    assert data.started == WALL0 + 30
    assert data.impact.slowed_seconds == 20
    assert data.impact.time_to_full_speed == 20  # slow seconds ended before the last point
    slow_to_the_end = replace(still_open, series=Series(3600, 10, 60, [replace(p) for p in cut[:45]], 45))
    assert build_report(slow_to_the_end, generated=0.0).impact.time_to_full_speed is None


def test_without_a_calm_preroll_the_figures_say_unknown() -> None:
    points = [Point(WALL0 + s, 1, 10, 5000, 0.5, 300.0, Mode.UNDER_ATTACK) for s in range(60)]
    incident = Incident("INC-2", WALL0, Series(3600, 10, 60, points, 60), closed=WALL0 + 90)
    data = build_report(incident, generated=WALL0 + 100)
    assert data.usual_rps is None and data.started == WALL0
    assert data.ended == WALL0 + 60  # the last second out of NORMAL
    assert data.impact.usual_latency is None
    assert data.impact.slowed_seconds is None and data.impact.time_to_full_speed is None


def test_an_incident_with_no_series_still_builds() -> None:
    incident = Incident("INC-3", WALL0, Series(3600, 10, 60), closed=WALL0 + 30)
    data = build_report(incident, generated=WALL0 + 60)
    assert data.points == () and data.requests == 0
    assert data.started == data.ended == WALL0


def test_the_hour_long_incident(incident: Incident) -> None:
    data = build_report(hour_incident(), generated=WALL0 + 4000)
    assert data.usual_rps == 52.0  # the baseline in the first escalation's values
    assert data.started == WALL0 + 30
    # The attack's last 30 seconds fall in the series' first one-minute point (after its first hour):
    # the end is known to that minute.
    assert data.ended == WALL0 + 3660
    assert data.impact.slowed_seconds == 20 and data.impact.time_to_full_speed == 20
    assert len(data.points) == 3600 + 2


def test_report_data_is_a_copy_of_the_series(incident: Incident) -> None:
    data = build_report(incident, generated=0.0)
    data.points[0].legit += 1_000_000
    assert incident.series.points[0].legit < 1_000_000
