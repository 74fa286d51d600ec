"""Incidents: one record per attack, from the first step out of NORMAL to a calm hold back in NORMAL.

An incident holds its peaks, its timeline (every mode change and pin, and whatever else is recorded in
it: signatures, ban waves, operator notes) and a per-second series of legit vs mitigated requests,
origin latency, distinct clients and mode. The series stays bounded however long an attack lasts:
every second for the first `fine` seconds (an hour by default), then points of `coarse_width` seconds;
when those exceed `coarse_limit`, neighbours merge pairwise and the width doubles.

Persistence belongs to the incident store (a later issue); here an incident is a dataclass with
`to_json()` / `from_json()`.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from shieldwall.detector.config import DetectorConfig
from shieldwall.detector.events import Event, EventKind, Mode


@dataclass(slots=True)
class Point:
    """`seconds` seconds of traffic from `wall`: counts are sums, latency and clients the maximum of the
    seconds (so a spike survives downsampling), mode the highest."""

    wall: float
    seconds: int
    legit: int
    mitigated: int
    latency_p95: float
    distinct_clients: float
    mode: Mode

    def absorb(self, other: Point) -> None:
        self.seconds += other.seconds
        self.legit += other.legit
        self.mitigated += other.mitigated
        self.latency_p95 = max(self.latency_p95, other.latency_p95)
        self.distinct_clients = max(self.distinct_clients, other.distinct_clients)
        if other.mode.level > self.mode.level:
            self.mode = other.mode

    def to_list(self) -> list[Any]:
        return [
            self.wall,
            self.seconds,
            self.legit,
            self.mitigated,
            self.latency_p95,
            self.distinct_clients,
            self.mode.value,
        ]

    @staticmethod
    def from_list(data: list[Any]) -> Point:
        wall, seconds, legit, mitigated, latency, clients, mode = data
        return Point(
            float(wall), int(seconds), int(legit), int(mitigated), float(latency), float(clients), Mode(mode)
        )


@dataclass(slots=True)
class Series:
    fine_limit: int
    coarse_limit: int
    coarse_width: int
    points: list[Point] = field(default_factory=list)
    fine: int = 0  # the first `fine` points are one second each

    def append(self, point: Point) -> None:
        points = self.points
        if self.fine < self.fine_limit:
            points.append(point)
            self.fine += 1
            return
        if len(points) > self.fine and points[-1].seconds < self.coarse_width:
            points[-1].absorb(point)
            return
        points.append(replace(point))
        if len(points) - self.fine > self.coarse_limit:
            coarse = points[self.fine :]
            merged = coarse[0::2]
            for target, extra in zip(merged, coarse[1::2], strict=False):
                target.absorb(extra)
            points[self.fine :] = merged
            self.coarse_width *= 2

    def to_dict(self) -> dict[str, Any]:
        return {
            "fine_limit": self.fine_limit,
            "coarse_limit": self.coarse_limit,
            "coarse_width": self.coarse_width,
            "fine": self.fine,
            "points": [point.to_list() for point in self.points],
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Series:
        return Series(
            int(data["fine_limit"]),
            int(data["coarse_limit"]),
            int(data["coarse_width"]),
            [Point.from_list(item) for item in data["points"]],
            int(data["fine"]),
        )


def incident_id(wall: float) -> str:
    """'INC-20240612-193005' from the opening time, UTC."""
    return time.strftime("INC-%Y%m%d-%H%M%S", time.gmtime(wall))


@dataclass(slots=True)
class Incident:
    id: str
    opened: float  # wall time
    series: Series
    closed: float | None = None
    peak_mode: Mode = Mode.NORMAL
    peak_rps: float = 0.0
    peak_distinct_clients: float = 0.0
    peak_latency_p95: float = 0.0
    timeline: list[Event] = field(default_factory=list)
    timeline_dropped: int = 0  # events beyond the cap, counted rather than kept

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "opened": self.opened,
                "closed": self.closed,
                "peak_mode": self.peak_mode.value,
                "peak_rps": self.peak_rps,
                "peak_distinct_clients": self.peak_distinct_clients,
                "peak_latency_p95": self.peak_latency_p95,
                "timeline": [event.to_dict() for event in self.timeline],
                "timeline_dropped": self.timeline_dropped,
                "series": self.series.to_dict(),
            },
            separators=(",", ":"),
        )

    @staticmethod
    def from_json(text: str) -> Incident:
        data = json.loads(text)
        return Incident(
            id=str(data["id"]),
            opened=float(data["opened"]),
            series=Series.from_dict(data["series"]),
            closed=None if data["closed"] is None else float(data["closed"]),
            peak_mode=Mode(data["peak_mode"]),
            peak_rps=float(data["peak_rps"]),
            peak_distinct_clients=float(data["peak_distinct_clients"]),
            peak_latency_p95=float(data["peak_latency_p95"]),
            timeline=[Event.from_dict(item) for item in data["timeline"]],
            timeline_dropped=int(data["timeline_dropped"]),
        )


class IncidentTracker:
    """Opens, feeds and closes incidents. `record()` takes events as they happen (the ladder's, an
    operator's pin); `second()` takes each second's traffic. Closed incidents wait in `closed` (the last
    `keep_closed`) for the store to take them."""

    def __init__(self, config: DetectorConfig, keep_closed: int = 16) -> None:
        self.config = config
        self.current: Incident | None = None
        self.closed: deque[Incident] = deque(maxlen=keep_closed)
        self._preroll: deque[Point] = deque(maxlen=config.incident_preroll)
        self._normal_since: float | None = None

    def record(self, events: Iterable[Event], mode: Mode, now: float, wall: float) -> list[Event]:
        """Note events that just happened, `mode` being the mode in force after them. Opens an incident
        when the mode has left NORMAL; returns the events stamped with the incident's id (and its
        INCIDENT_OPENED event first, when one opened)."""
        stamped: list[Event] = []
        incident = self.current
        if incident is None and mode is not Mode.NORMAL:
            incident = self.current = Incident(
                incident_id(wall),
                wall,
                Series(
                    self.config.incident_fine_seconds,
                    self.config.incident_coarse_points,
                    self.config.incident_coarse_width,
                ),
                peak_mode=mode,
            )
            for point in self._preroll:
                incident.series.append(point)
            self._preroll.clear()
            events = [
                Event(EventKind.INCIDENT_OPENED, now, wall, Mode.NORMAL, mode, "mode left normal"),
                *events,
            ]
        if incident is None:
            return list(events)
        for event in events:
            stamped.append(replace(event, incident=incident.id))
            if len(incident.timeline) < self.config.incident_max_timeline:
                incident.timeline.append(stamped[-1])
            else:
                incident.timeline_dropped += 1
        if mode.level > incident.peak_mode.level:
            incident.peak_mode = mode
        if mode is Mode.NORMAL:
            if self._normal_since is None:
                self._normal_since = now
        else:
            self._normal_since = None
        return stamped

    def second(self, point: Point, rps: float, now: float, wall: float) -> list[Event]:
        """One second of traffic (`point.mode` is the mode in force once it was judged). Returns the
        INCIDENT_CLOSED event when the incident has been back in NORMAL for the hold."""
        incident = self.current
        if incident is None:
            self._preroll.append(point)
            return []
        incident.series.append(point)
        incident.peak_rps = max(incident.peak_rps, rps)
        incident.peak_distinct_clients = max(incident.peak_distinct_clients, point.distinct_clients)
        incident.peak_latency_p95 = max(incident.peak_latency_p95, point.latency_p95)
        if self._normal_since is None or now - self._normal_since < self.config.hold:
            return []
        closing = Event(
            EventKind.INCIDENT_CLOSED,
            now,
            wall,
            Mode.NORMAL,
            Mode.NORMAL,
            f"normal for {self.config.hold:.0f} s",
        )
        stamped = self.record([closing], Mode.NORMAL, now, wall)
        incident.closed = wall
        self.closed.append(incident)
        self.current = None
        self._normal_since = None
        return stamped
