"""What the shield's control process decided, as the drill sees it: the mode over time, the attack
signatures it mined, the incident it opened.

The control process writes `state_dir/control/state.json` (control/state.py) at most once a second when
something changed; `ModeWatch.poll` re-reads it only when its stamp changed, and records each change
of mode at the drill's clock. Time to detect is read off that record: the first change away from
normal after the attack started. A file that is missing or half-written is "nothing known yet".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from shieldwall.control.state import CONTROL_DIR, STATE_FILE, ControlState, StateReader
from shieldwall.core.clock import Clock
from shieldwall.detector.events import Mode


@dataclass
class ModeWatch:
    """Polls one shield's control state; `history` is [(drill clock, mode)], starting in normal."""

    state_dir: Path
    clock: Clock
    history: list[tuple[float, Mode]] = field(default_factory=list)
    signatures: dict[str, str] = field(default_factory=dict)  # id -> description, every one seen
    incidents: list[str] = field(default_factory=list)
    pinned: bool = False

    def __post_init__(self) -> None:
        self._reader = StateReader(self.state_dir / CONTROL_DIR / STATE_FILE)
        self.history.append((self.clock.monotonic(), Mode.NORMAL))

    @property
    def mode(self) -> Mode:
        return self.history[-1][1]

    def poll(self) -> None:
        try:
            data = self._reader.changed()
            state = None if data is None else ControlState.from_json(data)
        except (OSError, ValueError):
            return
        if state is None:
            return
        self.observe(state)

    def observe(self, state: ControlState) -> None:
        if state.mode is not self.mode:
            self.history.append((self.clock.monotonic(), state.mode))
        for signature in state.signatures:
            self.signatures.setdefault(signature.id, signature.describe())
        if state.incident is not None and state.incident not in self.incidents:
            self.incidents.append(state.incident)
        self.pinned = state.pinned

    def first(self, since: float, *, at_least: Mode = Mode.ELEVATED) -> float | None:
        """Seconds from `since` to the first mode change at or above `at_least` (None: none yet)."""
        for at, mode in self.history:
            if at >= since and mode.level >= at_least.level:
                return at - since
        return None

    def back_to_normal(self, since: float) -> float | None:
        """Seconds from `since` until the mode was normal and stayed so (None: it is not normal now)."""
        if self.mode is not Mode.NORMAL:
            return None
        at = self.history[-1][0]
        return max(0.0, at - since)
