"""The files through which the control process talks to the workers and the operator, under
`server.state_dir`/control/:

- `state.json`, written by the control process at most once a second when something changed: the mode
  in force, whether an operator pinned it, and the active attack signatures. Workers poll its mtime
  from their sweeper (one stat twice a second) and apply it; the CLI's `mode status` reads it.
- `pin.json`, written by `shieldwall mode pin/unpin` (and later the admin API): the operator's wish,
  which the control process applies on its next tick and then records in the incident timeline.

Both are replaced atomically (core/atomic_file.py). A missing or unreadable file means "nothing
known": workers stay in normal mode, which is what a shield without a control process does anyway.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from shieldwall.core.atomic_file import write_atomic
from shieldwall.detector.events import Mode
from shieldwall.detector.signatures import Signature

CONTROL_DIR: Final = "control"
STATE_FILE: Final = "state.json"
PIN_FILE: Final = "pin.json"
_FORMAT: Final = "shieldwall-control/1"


def control_dir(state_dir: Path) -> Path:
    path = state_dir / CONTROL_DIR
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


@dataclass(frozen=True, slots=True)
class ControlState:
    mode: Mode = Mode.NORMAL
    pinned: bool = False
    incident: str | None = None
    signatures: tuple[Signature, ...] = ()
    updated: float = 0.0  # wall-clock seconds

    def to_json(self) -> bytes:
        document = {
            "format": _FORMAT,
            "mode": self.mode.value,
            "pinned": self.pinned,
            "incident": self.incident,
            "updated": self.updated,
            "signatures": [
                {
                    "id": sig.id,
                    "action": sig.action,
                    "conditions": [list(condition) for condition in sig.conditions],
                    "coverage": sig.coverage,
                    "collateral": sig.collateral,
                    "created": sig.created,
                    "expires": sig.expires,
                    "description": sig.describe(),
                }
                for sig in self.signatures
            ],
        }
        return json.dumps(document, indent=1, sort_keys=True).encode()

    @staticmethod
    def from_json(data: bytes) -> ControlState:
        """Raises ValueError for anything that is not a state file of this format."""
        try:
            document: Any = json.loads(data)
            if document.get("format") != _FORMAT:
                raise ValueError(f"not a shieldwall control state ({document.get('format')!r})")
            signatures = tuple(
                Signature(
                    conditions=tuple((str(name), str(value)) for name, value in entry["conditions"]),
                    coverage=float(entry["coverage"]),
                    collateral=float(entry["collateral"]),
                    action=entry["action"],
                    created=float(entry["created"]),
                    expires=float(entry["expires"]),
                )
                for entry in document["signatures"]
            )
            return ControlState(
                mode=Mode(document["mode"]),
                pinned=bool(document["pinned"]),
                incident=document["incident"],
                signatures=signatures,
                updated=float(document["updated"]),
            )
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"damaged control state: {exc}") from None


@dataclass(frozen=True, slots=True)
class Pin:
    """An operator's pin: `mode` until the wall-clock time `until` (None: until unpinned); `mode` None
    is an unpin."""

    mode: Mode | None
    until: float | None = None
    by: str = "operator"
    reason: str = ""
    written: float = field(default=0.0)

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "mode": None if self.mode is None else self.mode.value,
                "until": self.until,
                "by": self.by,
                "reason": self.reason,
                "written": self.written,
            }
        ).encode()

    @staticmethod
    def from_json(data: bytes) -> Pin:
        try:
            document: Any = json.loads(data)
            mode = document["mode"]
            return Pin(
                mode=None if mode is None else Mode(mode),
                until=None if document["until"] is None else float(document["until"]),
                by=str(document.get("by", "operator")),
                reason=str(document.get("reason", "")),
                written=float(document.get("written", 0.0)),
            )
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as exc:
            raise ValueError(f"damaged pin file: {exc}") from None


def write_state(state_dir: Path, state: ControlState) -> None:
    write_atomic(control_dir(state_dir) / STATE_FILE, state.to_json())


def write_pin(state_dir: Path, pin: Pin) -> None:
    write_atomic(control_dir(state_dir) / PIN_FILE, pin.to_json())


class StateReader:
    """Reads a file again only when its (mtime, size, inode) changed: one stat per poll otherwise."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None

    def changed(self) -> bytes | None:
        """The file's bytes if it changed since the last call (or appeared), else None."""
        try:
            info = os.stat(self.path)
        except FileNotFoundError:
            self._stamp = None
            return None
        stamp = (info.st_mtime_ns, info.st_size, info.st_ino)
        if stamp == self._stamp:
            return None
        data = self.path.read_bytes()
        self._stamp = stamp
        return data
