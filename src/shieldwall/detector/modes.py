"""The mode ladder: NORMAL -> ELEVATED -> UNDER_ATTACK, up fast, down slowly, or where an operator pins it.

Each second comes with a level (0 calm, 1 suspicious, 2 attack; see judge.py). Up: ELEVATED once
`elevate_after` of the last `window` seconds are at level 1 or more, UNDER_ATTACK once `attack_after` of
them are at level 2. With the defaults a flood is ELEVATED on its second second and UNDER_ATTACK on its
third (with attack_after <= elevate_after the ladder jumps straight up, in one event). Down: one step at
a time, each only after `hold` seconds in which every second was below the current mode's level; one
loud second restarts the hold.
So a pulse wave whose quiet gaps are shorter than the hold keeps the ladder up, and one whose gaps are
longer costs it a step, never a flap from UNDER_ATTACK to NORMAL and back.

The automatic ladder keeps running under an operator's pin, so when the pin ends (by `unpin` or its
`until` passing) the mode is the one the traffic calls for at that moment, not the one before the pin.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from shieldwall.detector.events import Event, EventKind, Mode


class Ladder:
    def __init__(
        self, window: int = 5, elevate_after: int = 2, attack_after: int = 3, hold: float = 30.0
    ) -> None:
        self.elevate_after = elevate_after
        self.attack_after = attack_after
        self.hold = hold
        self.auto = Mode.NORMAL
        self.pinned: Mode | None = None
        self.pinned_until: float | None = None
        self._levels: deque[int] = deque(maxlen=window)
        self._calm_since: float | None = None

    @property
    def mode(self) -> Mode:
        """The mode in force: the operator's pin, else the automatic one."""
        return self.pinned if self.pinned is not None else self.auto

    def update(
        self, now: float, wall: float, level: int, reason: str, values: Mapping[str, float]
    ) -> list[Event]:
        """Take one second's level; returns the events it caused (pin expiry first, then mode changes)."""
        events = self._expire_pin(now, wall)
        before = self.auto
        self._levels.append(level)
        wanted = Mode.NORMAL
        if sum(1 for seen in self._levels if seen >= 2) >= self.attack_after:
            wanted = Mode.UNDER_ATTACK
        elif sum(1 for seen in self._levels if seen >= 1) >= self.elevate_after:
            wanted = Mode.ELEVATED
        if wanted.level > self.auto.level:
            self.auto = wanted
            self._calm_since = None
        elif self.auto is not Mode.NORMAL:
            if level >= self.auto.level:
                self._calm_since = None
            elif self._calm_since is None:
                self._calm_since = now
            elif now - self._calm_since >= self.hold:
                self.auto = Mode.of_level(self.auto.level - 1)
                reason = f"calm for {now - self._calm_since:.0f} s"
                # The next step needs a hold of its own, and fresh evidence to climb back.
                self._calm_since = now
                self._levels.clear()
        if self.auto is not before:
            kind = EventKind.MODE if self.pinned is None else EventKind.AUTO_MODE
            events.append(Event(kind, now, wall, before, self.auto, reason, dict(values)))
        return events

    def pin(self, mode: Mode, until: float | None, now: float, wall: float, reason: str = "") -> list[Event]:
        """Hold `mode` until the monotonic time `until` (None: until unpinned), whatever the traffic."""
        before = self.mode
        self.pinned, self.pinned_until = mode, until
        shown = f"pinned {mode.value}" + ("" if until is None else f" for {until - now:.0f} s")
        events = [Event(EventKind.PIN, now, wall, before, mode, f"{shown}: {reason}" if reason else shown)]
        if mode is not before:
            events.append(Event(EventKind.MODE, now, wall, before, mode, shown))
        return events

    def unpin(self, now: float, wall: float, reason: str = "unpinned") -> list[Event]:
        if self.pinned is None:
            return []
        before = self.mode
        self.pinned = self.pinned_until = None
        events = [Event(EventKind.UNPIN, now, wall, before, self.auto, reason)]
        if self.auto is not before:
            events.append(Event(EventKind.MODE, now, wall, before, self.auto, reason))
        return events

    def _expire_pin(self, now: float, wall: float) -> list[Event]:
        if self.pinned_until is not None and now >= self.pinned_until:
            return self.unpin(now, wall, "pin expired")
        return []
