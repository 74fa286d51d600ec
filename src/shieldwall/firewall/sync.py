"""The smallest nft transaction that makes the kernel's sets hold a BanSet, from what they held after the
last one that succeeded.

Rewriting the sets whole is simple but costs: 100,000 elements take `nft` about half a second, and
during a flood the workers' ban files change every two seconds. So, once the sets are known, a change
is sent as a delta: the new entries added, the lifted or replaced ones deleted (an element's timeout
cannot be changed in place); adding one address to a set of 100,000 takes nft milliseconds. Elements
that expire need nothing: the kernel drops them by itself. A full rewrite is planned instead when what
the kernel holds is unknown (at start, after a failed transaction), when an element that must go may
expire before `nft` runs (deleting a missing element fails the transaction), and every `full_every`
seconds, which repairs the sets if someone flushed the ruleset meanwhile (a `systemctl reload
nftables` does). A delta that fails anyway is followed by a full rewrite.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from shieldwall.firewall import nft_json
from shieldwall.firewall.entries import BanSet, Entry, Key

FULL_EVERY: Final = 60.0
MARGIN: Final = 2.0  # an element this close to its expiry may be gone by the time nft runs


@dataclass(frozen=True, slots=True)
class Transaction:
    commands: list[nft_json.Command]
    full: bool
    holds: dict[Key, float]  # what the sets hold once it is applied: Key → end
    added: int
    removed: int


class KernelSets:
    """What the kernel's sets hold as far as this process knows: what its last successful transaction
    left there (elements expire by themselves). Times are wall-clock epoch seconds."""

    def __init__(self, table: str, full_every: float = FULL_EVERY) -> None:
        self.table = table
        self.full_every = full_every
        self._holds: dict[Key, float] | None = None  # None: unknown
        self._last_full = -full_every

    def plan(self, bans: BanSet, now: float) -> Transaction | None:
        """The transaction to apply now, or None when the sets already hold `bans`."""
        wanted = {entry.key: entry for entry in bans.entries()}
        holds = {key: entry.end for key, entry in wanted.items()}
        if self._holds is None or self.stale(now):
            return Transaction(nft_json.full(self.table, bans, now), True, holds, len(wanted), 0)
        removed: list[Entry] = []
        for key, end in self._holds.items():
            if end <= now:
                continue  # expired: the kernel dropped it
            entry = wanted.get(key)
            if entry is not None and entry.end == end:
                continue
            if end <= now + MARGIN:
                return Transaction(nft_json.full(self.table, bans, now), True, holds, len(wanted), 0)
            removed.append(Entry(*key, end))
        added = []
        for key, entry in wanted.items():
            held = self._holds.get(key)
            if held is None or held <= now or held != entry.end:
                added.append(entry)
        if not (removed or added):
            return None
        commands = nft_json.delta(self.table, removed, added, now)
        return Transaction(commands, False, holds, len(added), len(removed))

    def stale(self, now: float) -> bool:
        """Whether the next plan rewrites the sets whole, changed bans or not."""
        return self._holds is None or now - self._last_full >= self.full_every

    def applied(self, transaction: Transaction, now: float) -> None:
        """`transaction` succeeded: the sets hold what it says."""
        self._holds = transaction.holds
        if transaction.full:
            self._last_full = now

    def forget(self) -> None:
        """A transaction failed, or the sets were touched: the next plan rewrites them whole."""
        self._holds = None

    def elements(self, now: float) -> tuple[int, int]:
        """Elements the sets hold at `now`, IPv4 and IPv6 (0, 0 while unknown)."""
        counts = {4: 0, 6: 0}
        for key, end in (self._holds or {}).items():
            if end > now:
                counts[key[0]] += 1
        return counts[4], counts[6]
