"""What the admin API changes, done inside the control process, the same way the CLI does it from
outside, so that both leave the same files behind and a restarted control process keeps what was done:

- a mode pin is applied to the ControlLoop at once *and* written to control/pin.json (as `shieldwall
  mode pin` writes it). The control process's reader of that file (`pins`, shared with control/process.py)
  is told the write was ours, so the next tick does not apply the same pin a second time; a restarted
  control process reads it afresh and applies it again.
- bans go through state/manual_bans.py, like `shieldwall bans`: workers pick them up within a second.
- rejecting a signature rewrites control/state.json at once, so workers stop applying it within a
  second rather than at the next mining run.
- a reload is a SIGHUP to the supervisor, the control process's parent.

What operators did goes into the incident's report facts (control/incident_facts.py) as the CLI's pins
do: unbans and signature decisions as actions (bans are read from the ban store when the facts are
saved, so they are not noted twice). A pin's events are handed to the control loop (`take_events()`, once
a tick), which logs them and saves the incident at once, as for a pin read from pin.json.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from shieldwall.config.schema import Settings
from shieldwall.control.loop import ControlLoop
from shieldwall.control.state import Pin, StateReader, write_pin, write_state
from shieldwall.core.clock import Clock, SystemClock
from shieldwall.detector.events import Event, Mode
from shieldwall.detector.signatures import SignatureSet
from shieldwall.limiter.bans import Ban
from shieldwall.net.networks import NetworkSet
from shieldwall.report import words
from shieldwall.report.facts import Action
from shieldwall.state import manual_bans

log = logging.getLogger("shieldwall.admin")


class NoSupervisor(Exception):
    """There is no supervisor to reload (the control process was started without one, or it is gone)."""


class Operator:
    def __init__(
        self,
        control: ControlLoop,
        settings: Settings,
        pins: StateReader,
        *,
        supervisor: int | None = None,
        clock: Clock | None = None,
    ) -> None:
        """`pins` reads control/pin.json for the control process; `supervisor` is the pid to send SIGHUP
        to for a reload (None: reloads are refused, e.g. in tests)."""
        self.control = control
        self.settings = settings
        self.pins = pins
        self.supervisor = supervisor
        self.clock: Clock = clock if clock is not None else SystemClock()
        self._events: list[Event] = []
        # With [cluster] (control/process.py sets both): the cluster's detector, whose signatures the
        # node applies, and how a decision on a signature reaches the other nodes.
        self.cluster: ControlLoop | None = None
        self.share: Callable[[str, str], None] | None = None

    @property
    def state_dir(self) -> Path:
        return self.settings.server.state_dir

    def take_events(self) -> list[Event]:
        """The events of the pins made through the API since the last call."""
        events, self._events = self._events, []
        return events

    def _note(self, what: str, by: str) -> None:
        self.control.facts.note(Action(self.clock.wall(), what, by))
        log.warning("%s (by %s)", what, by)

    # --- the mode -------------------------------------------------------------------------------

    def pin(self, mode: Mode | None, seconds: float | None, by: str, reason: str = "") -> Pin:
        """Pin `mode` for `seconds` (None: until unpinned), or unpin with `mode` None. Raises OSError
        when pin.json cannot be written (then nothing changed)."""
        now, wall = self.clock.monotonic(), self.clock.wall()
        until = None if mode is None or seconds is None else wall + seconds
        pin = Pin(mode, until, by, reason, wall)
        write_pin(self.state_dir, pin)
        self.pins.changed()  # our own write: the control loop must not apply it again
        self._events += self.control.pin(pin, now, wall)
        return pin

    # --- bans -----------------------------------------------------------------------------------

    # The ban store's files are read and written in a thread: a large store takes a while to parse, and
    # the control loop must keep ticking meanwhile. Only the files are touched there.

    async def bans(self) -> tuple[list[Ban], list[str]]:
        """The bans in force, newest first, and the ban files that had to be skipped."""
        return await asyncio.to_thread(manual_bans.active, self.state_dir, self.clock.wall())

    async def ban(self, target: str, seconds: float | None, reason: str, by: str) -> tuple[Ban, bool]:
        """Ban `target` (as limiter.bans.ban_target spells it). Returns the ban and whether some of its
        addresses are allowlisted. Raises ValueError (allowlisted) or ban_store.StateDirError."""
        wall = self.clock.wall()
        ban = Ban(target, None if seconds is None else wall + seconds, reason, "manual", 0, wall)
        allowlist = NetworkSet(self.settings.bans.allowlist)
        overlaps = await asyncio.to_thread(manual_bans.add, self.state_dir, ban, allowlist)
        lasting = "until removed" if ban.until is None else f"until {words.utc(ban.until)}"
        log.warning("banned %s %s (by %s)%s", target, lasting, by, f": {reason}" if reason else "")
        return ban, overlaps

    async def unban(self, target: str, by: str) -> manual_bans.Removal:
        """Remove `target`'s manual ban and lift the workers' bans on it. Raises StateDirError."""
        removal = await asyncio.to_thread(manual_bans.remove, self.state_dir, target, self.clock.wall())
        if removal.count:
            self._note(f"Lifted the ban on {target}", by)
        return removal

    # --- signatures -----------------------------------------------------------------------------

    def _signature_sets(self) -> list[SignatureSet]:
        """The node's own detector's signatures, and with [cluster] the cluster's (which it applies)."""
        return [loop.signatures for loop in (self.control, self.cluster) if loop is not None]

    def pin_signature(self, signature_id: str, by: str) -> bool:
        """Keep an active signature in force until unpinned, even past the incident; False when none is
        active."""
        if not [True for sset in self._signature_sets() if sset.pin(signature_id)]:
            return False
        self._note(f"Pinned signature {signature_id}", by)
        self._share(signature_id, "pin")
        return True

    def unpin_signature(self, signature_id: str, by: str) -> bool:
        """Let a pinned signature live by its matches again (a full ttl from now); False when it was not
        pinned."""
        wall = self.clock.wall()
        if not [True for sset in self._signature_sets() if sset.unpin(signature_id, wall)]:
            return False
        self._note(f"Unpinned signature {signature_id}", by)
        self._share(signature_id, "unpin")
        return True

    def reject_signature(self, signature_id: str, by: str) -> bool:
        """Drop an active signature and never take it again during this incident; False when none is
        active. Raises OSError when the state file cannot be written (the workers then keep applying it
        until the next state change). With [cluster], every node drops it at its next tick instead."""
        found = [sset.get(signature_id) for sset in self._signature_sets()]
        signature = next((sig for sig in found if sig is not None), None)
        if signature is None:
            return False
        for sset in self._signature_sets():
            sset.reject(signature_id)
        self._note(f"Rejected signature {signature_id}: {signature.describe()}", by)
        if self.cluster is None:
            state = replace(
                self.control.state, signatures=self.control.signatures.active, updated=self.clock.wall()
            )
            write_state(self.state_dir, state)
        self._share(signature_id, "reject")
        return True

    def _share(self, signature_id: str, decision: str) -> None:
        if self.share is not None:
            self.share(signature_id, decision)

    # --- the configuration ----------------------------------------------------------------------

    def reload(self, by: str) -> int:
        """Ask the supervisor to reload the configuration (SIGHUP); returns its pid. Raises NoSupervisor.
        The supervisor checks the file first and keeps the running configuration when it is bad."""
        supervisor = self.supervisor
        # After the supervisor died, this process's parent is init or a subreaper: never signal that.
        if supervisor is None or os.getppid() != supervisor:
            raise NoSupervisor("no supervisor to reload: this control process was not started by one")
        os.kill(supervisor, signal.SIGHUP)
        log.warning("reload asked by %s: SIGHUP sent to the supervisor (pid %d)", by, supervisor)
        return supervisor
