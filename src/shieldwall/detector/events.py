"""What the detector tells the rest of the shield and writes in an incident's timeline.

One flat, JSON-friendly record for every kind of event, so that the timeline can also hold events
other parts add later (a signature, a ban wave, an operator's note) without a new type each: `kind` is
a free string, and the kinds the detector itself emits are listed in `EventKind`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Mode(StrEnum):
    NORMAL = "normal"
    ELEVATED = "elevated"
    UNDER_ATTACK = "under_attack"

    @property
    def level(self) -> int:
        return _LEVELS[self]

    @staticmethod
    def of_level(level: int) -> Mode:
        return _MODES[level]


_MODES = (Mode.NORMAL, Mode.ELEVATED, Mode.UNDER_ATTACK)
_LEVELS = {mode: level for level, mode in enumerate(_MODES)}


class EventKind(StrEnum):
    MODE = "mode"  # the mode in force changed
    AUTO_MODE = "auto_mode"  # the automatic ladder moved while an operator's pin overrides it
    PIN = "pin"
    UNPIN = "unpin"  # by the operator, or the pin's time ran out
    INCIDENT_OPENED = "incident_opened"
    INCIDENT_CLOSED = "incident_closed"


@dataclass(frozen=True, slots=True)
class Event:
    kind: str
    at: float  # monotonic seconds
    wall: float  # seconds since the epoch, for people and reports
    old: Mode | None = None
    new: Mode | None = None
    reason: str = ""
    values: Mapping[str, float] = field(default_factory=dict)  # the signals behind it
    incident: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": str(self.kind),
            "at": self.at,
            "wall": self.wall,
            "old": None if self.old is None else self.old.value,
            "new": None if self.new is None else self.new.value,
            "reason": self.reason,
            "values": dict(self.values),
            "incident": self.incident,
        }

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Event:
        return Event(
            kind=str(data["kind"]),
            at=float(data["at"]),
            wall=float(data["wall"]),
            old=None if data["old"] is None else Mode(data["old"]),
            new=None if data["new"] is None else Mode(data["new"]),
            reason=str(data["reason"]),
            values={str(name): float(value) for name, value in data["values"].items()},
            incident=None if data["incident"] is None else str(data["incident"]),
        )
