"""A worker's ban table, kept in step with the ban store (state/ban_store.py).

The table answers every accept in a few dict lookups; files are touched only from the server's sweeper:
a poll (one stat per ban file) twice a second, a reload when another writer (the `shieldwall bans` CLI,
another worker) changed a file, and a save of this worker's own bans and its offenders' ban chains when
they changed: at most every SAVE_INTERVAL seconds, so a flood that earns thousands of bans a second costs
one write every two seconds, not one per ban. A graceful stop saves once more; a worker killed outright
loses at most the last two seconds of its new bans (the clients are banned again by their next refusals).
A restarted worker takes back its bans and chains, so a repeat offender's next ban is as long after the
restart as it would have been without it. The table takes wall-clock time: bans outlive processes.
"""

from __future__ import annotations

import heapq
import logging
from operator import attrgetter

from shieldwall.config.schema import Settings
from shieldwall.limiter.bans import Ban, BanTable, Chain, Lift, apply_lifts, latest, strongest
from shieldwall.state import ban_store

log = logging.getLogger("shieldwall.bans")

SAVE_INTERVAL = 2.0  # seconds between saves of a worker's own bans (100k bans take ~0.2 s to save)


class WorkerBans:
    def __init__(self, settings: Settings, worker_id: int, now: float) -> None:
        self.table = BanTable(settings.bans)
        self._max_entries = settings.bans.max_entries
        self.state_dir = settings.server.state_dir
        self.writer = ban_store.worker_writer(worker_id)
        ban_store.prepare(self.state_dir)  # StateDirError (with what to do) stops the worker at start
        own = ban_store.load(self.state_dir, self.writer, now)
        self._report(own.problems)
        self.table.adopt(own.bans, own.chains)  # a restarted worker keeps its bans and ban levels
        self._stamp: ban_store.Stamp | None = None
        self._lifts: list[Lift] = []
        self._cache: ban_store.FileCache = {}
        self._saved = self.table.changes
        self._last_save = self._last_error = -float("inf")
        self.sync(now)

    def check(self, ip: str, prefix: str, now: float) -> Ban | None:
        return self.table.check(ip, prefix, now)

    def offence(self, ip: str, prefix: str, now: float) -> Ban | None:
        ban = self.table.offence(ip, prefix, now)
        if ban is not None:
            log.warning(
                "banned %s for %.0f s (ban level %d): %s", ban.target, ban.end - now, ban.level, ban.reason
            )
        return ban

    def sync(self, now: float, *, final: bool = False) -> None:
        """Reload what others wrote; save what this worker changed (at most every SAVE_INTERVAL s, and
        always when `final`). Called by the sweeper, and once more when the worker stops."""
        try:
            stamp = ban_store.changed_since(self.state_dir, self._stamp)
            if stamp is not None:
                contents = ban_store.load_all(self.state_dir, now, self._cache)
                self._report(contents.problems)
                self.table.merge(contents.bans, contents.lifts)
                self._lifts = contents.lifts
                self._stamp = stamp
            due = final or now - self._last_save >= SAVE_INTERVAL
            if self.table.changes != self._saved and due:
                self._save(now)
        except (OSError, ban_store.StateDirError) as exc:
            if now - self._last_error >= 60:  # once a minute: the sweeper calls twice a second
                self._last_error = now
                log.error("ban store %s: %s (bans stay in force in this worker)", self.state_dir, exc)

    def _save(self, now: float) -> None:
        # During a rolling reload the draining worker N and the new worker N share this file: save the
        # union with what is there, so neither drops the other's bans and chains (they run out anyway),
        # but for what the operator lifted, which this table has dropped already: the lifts end with the
        # bans they lifted, and a lifted offender's chain would otherwise outlive them in this file.
        on_disk = ban_store.load(self.state_dir, self.writer, now)
        lifted = {lift.target for lift in self._lifts}
        bans = strongest([*apply_lifts(on_disk.bans, self._lifts), *self.table.own(now)])
        kept = (chain for chain in on_disk.chains if chain.target not in lifted)
        chains: list[Chain] = list(latest([*kept, *self.table.chains(now)]).values())
        room = max(0, self._max_entries - len(bans))  # the union may hold more than one table would
        if len(chains) > room:
            chains = heapq.nlargest(room, chains, key=attrgetter("remember_until"))
        self._saved = self.table.changes
        self._last_save = now
        ban_store.save(self.state_dir, self.writer, bans.values(), chains=chains)

    @staticmethod
    def _report(problems: list[str]) -> None:
        for problem in problems:
            log.warning("ban store: %s", problem)
