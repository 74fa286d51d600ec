"""Which detector events become alerts, and how many of them reach each destination. Sans-io: the
caller gives the time (`now`, monotonic seconds) and gets back what to deliver where.

An attack must not become an alert storm, so three things hold alerts back:

- one alert per happening: the mode change that opens an incident is told by the "opened" alert (which
  takes its reason and figures), and the one a pin or an unpin causes by the "pinned"/"unpinned" alert;
- flapping: the same mode change (say elevated → under attack) in the same incident alerts at most
  once per `repeat_after` seconds; the ladder steps down slowly, but a pulsing attack can still climb
  the same step many times;
- a limit per destination: at most `max_per_window` alerts in any `window` seconds. Each alert spends
  a token that comes back `window` seconds later (a sliding window, not a bucket refilled at a rate:
  that would let 2 x N through in one window, and the setting promises N). Alerts that find no token
  are folded into one digest ("and K more events"), sent as soon as a token is back.

Each destination keeps its own limit and its own held alerts: a chat channel and a mailbox each get
their N alerts per window and their own digest.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Final

from shieldwall.detector.events import Event, EventKind, Mode
from shieldwall.detector.incidents import Incident
from shieldwall.report.model import build_report


class AlertKind(StrEnum):
    OPENED = "opened"  # an incident opened: the mode left normal
    ESCALATED = "escalated"  # the mode in force went up
    DEESCALATED = "deescalated"  # the mode in force stepped down
    CLOSED = "closed"  # the incident closed, with its summary
    PINNED = "pinned"  # an operator pinned the mode
    UNPINNED = "unpinned"  # an operator removed the pin, or it expired


DEFAULT_KINDS: Final = (
    AlertKind.OPENED,
    AlertKind.ESCALATED,
    AlertKind.CLOSED,
    AlertKind.PINNED,
    AlertKind.UNPINNED,
)
DIGEST_LISTED: Final = 20  # alerts a digest lists; older ones are only counted


@dataclass(frozen=True, slots=True)
class IncidentSummary:
    """What the "closed" alert says about the incident; the figures are the incident report's."""

    id: str
    opened: float  # wall
    closed: float  # wall
    peak_mode: Mode
    peak_rps: float
    requests: int  # seen from the attack's start (the report's estimate)
    mitigated: int  # of which refused, rate-limited, challenged or shed

    @property
    def duration(self) -> float:
        return self.closed - self.opened

    @property
    def mitigated_share(self) -> float | None:
        return self.mitigated / self.requests if self.requests else None

    @staticmethod
    def of(incident: Incident) -> IncidentSummary:
        closed = incident.closed if incident.closed is not None else incident.opened
        report = build_report(incident, generated=closed)
        return IncidentSummary(
            incident.id,
            incident.opened,
            closed,
            incident.peak_mode,
            incident.peak_rps,
            report.requests,
            report.mitigated,
        )


@dataclass(frozen=True, slots=True)
class Alert:
    kind: AlertKind
    wall: float  # when it happened, seconds since the epoch
    incident: str | None
    old: Mode | None
    new: Mode | None
    reason: str
    values: Mapping[str, float] = field(default_factory=dict)
    summary: IncidentSummary | None = None  # for CLOSED


@dataclass(frozen=True, slots=True)
class Digest:
    """Alerts a destination's limit held back, sent together once it allows one more."""

    alerts: tuple[Alert, ...]  # the last DIGEST_LISTED of them, oldest first
    total: int  # how many were held in all (>= len(alerts))
    since: float  # wall time of the first one held

    @property
    def not_listed(self) -> int:
        return self.total - len(self.alerts)


Notice = Alert | Digest


@dataclass(frozen=True, slots=True)
class Delivery:
    destination: str
    notice: Notice


class _Outlet:
    """One destination's limit: the times of its recent sends, and what waits for the next token."""

    def __init__(self, max_sends: int, window: float) -> None:
        self.window = window
        self.sent: deque[float] = deque(maxlen=max_sends)
        self.held: deque[Alert] = deque(maxlen=DIGEST_LISTED)
        self.held_total = 0
        self.held_since = 0.0

    def take(self, now: float) -> bool:
        """Spend a token if one is back (the oldest send has left the window)."""
        if len(self.sent) == self.sent.maxlen and now - self.sent[0] < self.window:
            return False
        self.sent.append(now)  # a full deque drops the oldest send, whose token this is
        return True

    def hold(self, alert: Alert) -> None:
        if not self.held_total:
            self.held_since = alert.wall
        self.held.append(alert)
        self.held_total += 1

    def release(self) -> Notice:
        """The held alerts as one notice: a lone one as itself, else a digest; then nothing is held."""
        held, total = tuple(self.held), self.held_total
        self.held.clear()
        self.held_total = 0
        return held[0] if total == 1 else Digest(held, total, self.held_since)


class AlertPolicy:
    def __init__(
        self,
        destinations: Sequence[str],
        *,
        kinds: Collection[AlertKind] = DEFAULT_KINDS,
        max_per_window: int = 5,
        window: float = 600.0,
        repeat_after: float = 600.0,
    ) -> None:
        if max_per_window < 1 or window <= 0 or repeat_after < 0:
            raise ValueError("max_per_window >= 1, window > 0 and repeat_after >= 0 are required")
        self.kinds = frozenset(kinds)
        self.repeat_after = repeat_after
        self._outlets = {name: _Outlet(max_per_window, window) for name in destinations}
        self._changes: dict[tuple[str | None, Mode, Mode], float] = {}  # mode change → when it last alerted
        self.flaps_suppressed = 0

    def observe(self, events: Sequence[Event], closed: Sequence[Incident], now: float) -> list[Delivery]:
        """One tick: the alerts these events make, and what each destination may send now (held
        alerts too, as a digest, once its limit allows). Call it every tick, with or without events."""
        return self.release(self.alerts(events, closed, now), now)

    def alerts(self, events: Iterable[Event], closed: Sequence[Incident], now: float) -> list[Alert]:
        """The alerts events make, before any destination's limit. `closed` are the incidents closed
        this tick (their summaries go with their "closed" alerts)."""
        by_id = {incident.id: incident for incident in closed}
        self._forget(now)
        alerts: list[Alert] = []
        announcer: Event | None = None  # the event just before, if it made an opened/pinned/unpinned alert
        for event in events:
            covering, announcer = announcer, None
            kind = _KIND_OF.get(event.kind)
            if kind is None:  # auto_mode (a pin holds the mode), signatures, notes
                continue
            if kind is AlertKind.ESCALATED:
                if event.old is None or event.new is None:
                    continue
                if covering is not None and covering.new is event.new and covering.at == event.at:
                    if alerts[-1].kind is AlertKind.OPENED:  # the change's reason and figures say why
                        alerts[-1] = replace(alerts[-1], reason=event.reason, values=dict(event.values))
                    continue
                if event.new.level < event.old.level:
                    kind = AlertKind.DEESCALATED
                if kind not in self.kinds or self._flapping(event, now):
                    continue
            elif kind not in self.kinds:
                continue
            summary = None
            if kind is AlertKind.CLOSED and event.incident in by_id:
                summary = IncidentSummary.of(by_id[event.incident])
            alerts.append(
                Alert(
                    kind,
                    event.wall,
                    event.incident,
                    event.old,
                    event.new,
                    event.reason,
                    dict(event.values),
                    summary,
                )
            )
            if kind in _ANNOUNCING:
                announcer = event
        return alerts

    def release(self, alerts: Sequence[Alert], now: float) -> list[Delivery]:
        """Pass alerts through each destination's limit; returns what to send now, in order."""
        out: list[Delivery] = []
        for name, outlet in self._outlets.items():
            for alert in alerts:
                # Once alerts are held, later ones wait behind them: a destination never hears of an
                # incident's close before the escalation held back before it.
                if not outlet.held_total and outlet.take(now):
                    out.append(Delivery(name, alert))
                else:
                    outlet.hold(alert)
            if outlet.held_total and outlet.take(now):
                out.append(Delivery(name, outlet.release()))
        return out

    def held(self, destination: str) -> int:
        """Alerts waiting for `destination`'s next token."""
        return self._outlets[destination].held_total

    def _flapping(self, event: Event, now: float) -> bool:
        assert event.old is not None and event.new is not None
        key = (event.incident, event.old, event.new)
        last = self._changes.get(key)
        if last is not None and now - last < self.repeat_after:
            self.flaps_suppressed += 1
            return True
        self._changes[key] = now
        return False

    def _forget(self, now: float) -> None:
        """Drop mode changes older than repeat_after: the table holds one window's changes at most."""
        if self._changes:
            self._changes = {key: at for key, at in self._changes.items() if now - at < self.repeat_after}


_KIND_OF: Final[Mapping[str, AlertKind]] = {
    EventKind.INCIDENT_OPENED: AlertKind.OPENED,
    EventKind.MODE: AlertKind.ESCALATED,  # or DEESCALATED, by the levels
    EventKind.INCIDENT_CLOSED: AlertKind.CLOSED,
    EventKind.PIN: AlertKind.PINNED,
    EventKind.UNPIN: AlertKind.UNPINNED,
}
_ANNOUNCING: Final = frozenset((AlertKind.OPENED, AlertKind.PINNED, AlertKind.UNPINNED))
