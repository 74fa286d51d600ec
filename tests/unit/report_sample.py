"""An incident for the report tests, made by the detector itself, and the facts other parts add to it.

`detector_incident()` drives `Detector.observe` with test_detector_detector's synthetic site: a calm
warm-up, a flood that slows the origin for its first seconds (before the shield mitigates it), an
operator's pin that expires, a signature noted in the timeline, and the calm until the incident closes.
`sample_facts()` is what the incident store and the operator would know about it; `hour_incident()` a
one-hour flood made directly with the incident API, for size and speed."""

from __future__ import annotations

from test_detector_detector import FLOOD, WALL0, warm

from shieldwall.detector.config import DetectorConfig
from shieldwall.detector.events import Event, EventKind, Mode
from shieldwall.detector.incidents import Incident, Point, Series, incident_id
from shieldwall.detector.signatures import Signature
from shieldwall.limiter.bans import Ban
from shieldwall.report.facts import (
    AUTOMATIC,
    Action,
    Contact,
    ImpactFacts,
    ReportFacts,
    SignatureRecord,
    TopEntry,
    TopSources,
)

HOSTILE_AGENT = "<script>alert('x')</script> | **bold** `code` [link](http://evil.example/) &amp;"


def detector_incident(attack_seconds: int = 120) -> Incident:
    run = warm()
    start = run.now
    run.seconds(4, latency=0.9, **FLOOD)  # the origin struggles until the shield is under attack
    now = float(run.now)
    run.detector.pin(Mode.UNDER_ATTACK, now + 60, now, WALL0 + now, "jane: hold it while we call the host")
    run.detector.note(
        Event(
            "signature",
            now,
            WALL0 + now,
            reason="sig-0123456789 proposed: GET /search with a random 'q' parameter",
            values={"coverage": 0.97, "collateral": 0.0},
        )
    )
    run.seconds(attack_seconds - 4, **FLOOD)
    run.seconds(200)
    (incident,) = run.detector.pop_closed()
    assert incident.opened >= WALL0 + start
    return incident


def sample_facts(incident: Incident) -> ReportFacts:
    first = incident.opened + 3
    block = Signature((("path", "/search"), ("user_agent", "curl/8.5.0")), 0.62, 0.0, "block", 0.0, 0.0)
    challenge = Signature(
        (("path", "/search"), ("query_shape", "q=alnum16")), 0.35, 0.004, "challenge", 0.0, 0.0
    )
    hostile = Signature((("user_agent", HOSTILE_AGENT),), 0.03, 0.0, "block", 0.0, 0.0)
    return ReportFacts(
        organisation="Example Borough Council",
        site="www.example.gov.uk",
        origin="web server 10.0.0.5:8080",
        contact=Contact("Jane Doe", "IT operations lead", "it-security@example.gov.uk", "+44 20 7946 0000"),
        signatures=(
            SignatureRecord(block, first, first + 110, 412_000),
            SignatureRecord(challenge, first + 1, first + 110, 236_000, "jane"),
            SignatureRecord(hostile, first + 2, None, None),
        ),
        bans=(
            Ban("203.0.113.7", first + 600, "30 refusals within 10 s", "auto", 0, first + 5),
            Ban("203.0.113.9", first + 600, "30 refusals within 10 s", "auto", 0, first + 6),
            Ban("2001:db8:1:2::/64", first + 1800, "30 refusals within 10 s", "auto", 1, first + 7),
            Ban("198.51.100.0/24", None, "credential stuffing <again>", "manual", 0, first + 20),
        ),
        actions=(
            Action(first + 30, "Called the hosting provider to warn them", "Jane Doe"),
            Action(first + 40, "Raised the origin's worker count", AUTOMATIC),
        ),
        top=TopSources(
            prefixes=(
                TopEntry("203.0.113.0/24", 380_000, 0.57),
                TopEntry("2001:db8:1:2::/64", 150_000, 0.22),
                TopEntry("198.51.100.0/24", 60_000, 0.09),
            ),
            asns=(TopEntry("AS64500", 530_000, 0.79, "EXAMPLE-TRANSIT"), TopEntry("AS64501", 60_000, 0.09)),
            fingerprints=(TopEntry("9f2c01ab", 590_000, 0.88), TopEntry("77aa0c12+cr", 40_000, 0.06)),
            user_agents=(TopEntry("curl/8.5.0", 412_000, 0.62), TopEntry(HOSTILE_AGENT, 20_000, 0.03)),
        ),
        impact=ImpactFacts(0.991, 0.998, 50_000, 1_200),
        next_steps="Review the origin's capacity with the hosting provider.",
    )


def hour_incident(seconds: int = 3600, wall0: float = WALL0) -> Incident:
    """A one-hour flood built directly from the incident API (fast): 30 calm seconds of pre-roll, the
    attack (the origin slow for its first 20 seconds), then 90 calm seconds to the close."""
    config = DetectorConfig()
    series = Series(config.incident_fine_seconds, config.incident_coarse_points, config.incident_coarse_width)
    opened = wall0 + 31
    total = 30 + seconds + 90
    for second in range(total):
        wall = wall0 + second
        attacking = 30 <= second < 30 + seconds
        mode = Mode.NORMAL
        if opened <= wall < wall0 + 30 + seconds + 60:
            mode = (
                Mode.UNDER_ATTACK
                if wall >= opened + 1 and wall < wall0 + 30 + seconds + 30
                else Mode.ELEVATED
            )
        latency = 0.8 if 30 <= second < 50 else 0.03 + (second % 7) / 1000
        legit = 50 + second % 5
        mitigated = 4000 + (second * 37) % 900 if attacking else second % 2
        clients = 300.0 + second % 40 if attacking else 20.0 + second % 3
        series.append(Point(wall, 1, legit, mitigated, latency, clients, mode))
    closed = wall0 + total
    timeline = [
        Event(EventKind.INCIDENT_OPENED, 31.0, opened, Mode.NORMAL, Mode.ELEVATED, "mode left normal"),
        Event(EventKind.MODE, 31.0, opened, Mode.NORMAL, Mode.ELEVATED, "flood", {"rps_baseline": 52.0}),
        Event(EventKind.MODE, 32.0, opened + 1, Mode.ELEVATED, Mode.UNDER_ATTACK, "flood", {"rps": 4500.0}),
        Event(
            EventKind.MODE, 30.0 + seconds + 30, wall0 + 30 + seconds + 30, Mode.UNDER_ATTACK, Mode.ELEVATED
        ),
        Event(EventKind.MODE, 30.0 + seconds + 60, wall0 + 30 + seconds + 60, Mode.ELEVATED, Mode.NORMAL),
        Event(EventKind.INCIDENT_CLOSED, float(total), closed, Mode.NORMAL, Mode.NORMAL, "normal for 30 s"),
    ]
    return Incident(
        incident_id(opened),
        opened,
        series,
        closed=closed,
        peak_mode=Mode.UNDER_ATTACK,
        peak_rps=4954.0,
        peak_distinct_clients=339.0,
        peak_latency_p95=0.8,
        timeline=timeline,
    )
