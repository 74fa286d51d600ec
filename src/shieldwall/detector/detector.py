"""The detector as the supervisor sees it: one `Second` in, the events it caused out.

Each second: read the metrics (judge.read), judge them against the baselines (judge.judge), move the
ladder (modes.Ladder), learn the second if it was calm, and feed the incident (incidents.py). Learning
happens after judging, so a second is never compared with a baseline that already contains it, and it
depends on the highest of the automatic and the pinned mode: full speed in NORMAL, `elevated_learning`
in ELEVATED, not at all UNDER_ATTACK or for a second judged an attack. A crowd that is merely elevated
is thus slowly accepted, while a flood never becomes its own baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shieldwall.detector.baseline import Baseline
from shieldwall.detector.config import DetectorConfig
from shieldwall.detector.counters import Second
from shieldwall.detector.events import Event, Mode
from shieldwall.detector.incidents import Incident, IncidentTracker, Point
from shieldwall.detector.judge import DISTINCT_CLIENTS, RPS, Verdict, judge, metric_specs, read
from shieldwall.detector.modes import Ladder
from shieldwall.detector.newclients import NewClients


@dataclass(frozen=True, slots=True)
class DetectorStatus:
    mode: Mode
    auto_mode: Mode
    pinned: Mode | None
    pinned_until: float | None  # monotonic
    baseline_ready: bool
    learned_seconds: int
    level: int  # the last second's verdict
    reasons: tuple[str, ...]
    values: dict[str, float]
    baselines: dict[str, float]  # mean per metric
    incident: str | None  # the open incident's id

    def to_dict(self) -> dict[str, Any]:
        return {
            "mode": self.mode.value,
            "auto_mode": self.auto_mode.value,
            "pinned": None if self.pinned is None else self.pinned.value,
            "pinned_until": self.pinned_until,
            "baseline_ready": self.baseline_ready,
            "learned_seconds": self.learned_seconds,
            "level": self.level,
            "reasons": list(self.reasons),
            "values": dict(self.values),
            "baselines": dict(self.baselines),
            "incident": self.incident,
        }


class Detector:
    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = config = config if config is not None else DetectorConfig()
        self.baseline = Baseline(metric_specs(config), config.alpha, config.warmup, config.clip_z)
        self.ladder = Ladder(config.window, config.elevate_after, config.attack_after, config.hold)
        self.incidents = IncidentTracker(config)
        self._new_clients = NewClients(config.new_client_window)
        self._verdict = Verdict(0, (), {})

    @property
    def mode(self) -> Mode:
        return self.ladder.mode

    @property
    def incident(self) -> Incident | None:
        """The open incident, if any."""
        return self.incidents.current

    def observe(self, second: Second, now_wall: float) -> list[Event]:
        """Judge one merged second (its `at` is the monotonic now) and return what changed: mode
        changes, pin expiry, incident opened/closed; events inside an incident carry its id."""
        now = second.at
        values = read(second, self._new_clients.observe(second.clients, now), self.config)
        verdict = self._verdict = judge(values, self.baseline, self.config)
        events = self.ladder.update(now, now_wall, verdict.level, verdict.reason, verdict.values)
        guard = max(self.ladder.auto.level, self.ladder.mode.level)
        if verdict.level < 2 and guard < 2:
            self.baseline.learn(values, 1.0 if guard == 0 else self.config.elevated_learning)
        events = self.incidents.record(events, self.mode, now, now_wall)
        point = Point(
            now_wall,
            1,
            second.legit,
            second.mitigated,
            second.latency_quantile(0.95),
            values[DISTINCT_CLIENTS],
            self.mode,
        )
        return events + self.incidents.second(point, values[RPS], now, now_wall)

    def pin(
        self, mode: Mode, until: float | None, now: float, now_wall: float, reason: str = ""
    ) -> list[Event]:
        """An operator's pin: `mode` holds until the monotonic time `until` (None: until unpin())."""
        return self.incidents.record(
            self.ladder.pin(mode, until, now, now_wall, reason), self.mode, now, now_wall
        )

    def unpin(self, now: float, now_wall: float) -> list[Event]:
        return self.incidents.record(self.ladder.unpin(now, now_wall), self.mode, now, now_wall)

    def note(self, event: Event) -> Event:
        """Add an event from elsewhere (a signature, a ban wave, an operator's note) to the open incident's
        timeline; returns it stamped with the incident's id (unchanged when none is open)."""
        if self.incidents.current is None:
            return event
        (stamped,) = self.incidents.record([event], self.mode, event.at, event.wall)
        return stamped

    def pop_closed(self) -> list[Incident]:
        """Closed incidents not yet taken (the last 16 are kept), oldest first."""
        closed = list(self.incidents.closed)
        self.incidents.closed.clear()
        return closed

    def status(self) -> DetectorStatus:
        verdict = self._verdict
        return DetectorStatus(
            mode=self.mode,
            auto_mode=self.ladder.auto,
            pinned=self.ladder.pinned,
            pinned_until=self.ladder.pinned_until,
            baseline_ready=self.baseline.ready,
            learned_seconds=self.baseline.learned,
            level=verdict.level,
            reasons=verdict.reasons,
            values=dict(verdict.values),
            baselines=self.baseline.means(),
            incident=None if self.incidents.current is None else self.incidents.current.id,
        )
