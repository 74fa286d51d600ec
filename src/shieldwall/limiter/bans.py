"""Bans: who may not connect at all, for how long, and why.

One `BanTable` per worker holds three kinds of ban, all keyed by what they cover, an address or a
client prefix (the IPv4 /24 or IPv6 /64 that `net.client_identity.client_prefix` writes):
- automatic bans this worker earned for repeat offenders (`offence`): `offences` refusals within
  `offence_window` seconds ban the address for durations[level], where level counts the bans before
  it in an unbroken chain (each new ban beginning within `memory` seconds of the previous one's end),
  capped at the last duration. A chain that goes quiet for `memory` seconds starts again at the first;
- bans taken back after a restart (`adopt`): with the automatic ones, this worker's *own* bans, which
  it saves to its own file in the store (state/ban_store.py), together with its offenders' `chains`
  (an offender's chain outlives its last ban by `memory` seconds, and so must outlive a restart);
- everything the store holds (`merge`): the operator's manual bans (written by `shieldwall bans`
  through the store, never through this table) and the other workers' bans, so a client banned by one
  worker is refused by all of them.

The allowlist wins over every ban. Times are wall-clock epoch seconds, never monotonic ones: bans are
shared between processes and outlive restarts.

`check` runs on every accepted connection: a client with no ban costs four dict lookups (own, then
stored bans, for the address and for its prefix; ~100 ns), expired bans are dropped as they are met,
and the allowlist (a cached answer per address) is consulted only when a ban was found.

Memory is bounded: bans and offender records together never exceed `max_entries`. When full, a small
sample of the oldest entries is looked at (as in limiter/gcra.py): expired ones go first, then the
offender record that ends soonest (a forgotten offender costs at most a later or shorter ban). New
offenders and automatic bans never push out a ban, so under a flood the bans already made stay until
they end. A merge or an adoption beyond max_entries drops offender records first, then the bans that
end soonest, so an operator's permanent bans are the last to go. Stdlib only.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice
from typing import TYPE_CHECKING, Final, Literal, TypeVar

from shieldwall.net.networks import IPV4_OCTET, NetworkSet, parse_network

if TYPE_CHECKING:
    from shieldwall.config.policy_schema import Bans

BanSource = Literal["auto", "manual"]
_T = TypeVar("_T")

_FOREVER: Final = float("inf")
_EVICTION_SAMPLE: Final = 16
_PREFIX_LENGTH: Final = {4: 24, 6: 64}  # what client_prefix groups clients by
_O = IPV4_OCTET
_CANONICAL_V4: Final = re.compile(rf"{_O}\.{_O}\.{_O}\.(?:{_O}|0/24)")


@dataclass(frozen=True, slots=True)
class Ban:
    target: str  # "203.0.113.7", "203.0.113.0/24" or "2001:db8:1:2::/64" (see ban_target)
    until: float | None  # wall-clock epoch seconds; None: until an operator removes it (manual bans only)
    reason: str
    source: BanSource
    level: int  # automatic bans: bans before this one in the offender's chain (0 for a first ban)
    since: float  # when it began: listings show newest first, and a Lift covers only older bans

    @property
    def end(self) -> float:
        return _FOREVER if self.until is None else self.until


@dataclass(frozen=True, slots=True)
class Lift:
    """An operator's `shieldwall bans remove` of bans that workers saved: every ban on `target` that
    began at or before `at` is lifted, wherever it is. Workers' files are theirs alone to write, so
    the lift is kept beside the manual bans instead, until `until` (the latest end among the bans it
    lifted; None while one of them was permanent): after that, nothing it covers can be active."""

    target: str
    at: float
    until: float | None


@dataclass(frozen=True, slots=True)
class Chain:
    """An offender's escalation, kept beside its worker's own bans so that it outlives a restart:
    `length` bans in an unbroken chain (so its next ban is at level `length`), remembered until
    `remember_until` (wall-clock epoch seconds). Not a ban: it never refuses a client by itself."""

    target: str
    length: int
    remember_until: float


def ban_target(text: str) -> str:
    """The one spelling of what a ban can cover: an address ("203.0.113.7", "2001:db8::1") or a client
    prefix ("203.0.113.0/24", "2001:db8:1:2::/64"), exactly as check() is asked about them.
    "203.0.113.9/24" becomes "203.0.113.0/24", a /32 or /128 its address, ::ffff:1.2.3.4 becomes
    1.2.3.4. Raises ValueError, saying what to write, for anything else."""
    if _CANONICAL_V4.fullmatch(text):
        return text  # the common case, and every line of a saved file: no ipaddress objects
    if "%" in text:
        raise ValueError("an address with a zone index (%) cannot be banned; write the address alone")
    try:
        network = parse_network(text)
    except ValueError:
        raise ValueError(
            "not an IP address or CIDR prefix; write e.g. 203.0.113.7, 203.0.113.0/24 or 2001:db8:1:2::/64"
        ) from None
    if network.prefixlen == network.max_prefixlen:
        return str(network.network_address)
    if network.prefixlen != _PREFIX_LENGTH[network.version]:
        raise ValueError(
            "a ban covers one address or one client prefix (an IPv4 /24 or an IPv6 /64), which is what "
            "each connection is checked against; ban wider ranges in the firewall"
        )
    return str(network)


def apply_lifts(bans: Iterable[Ban], lifts: Iterable[Lift]) -> list[Ban]:
    """`bans` without the ones a lift covers."""
    latest: dict[str, float] = {}
    for lift in lifts:
        latest[lift.target] = max(latest.get(lift.target, lift.at), lift.at)
    if not latest:
        return list(bans)
    return [ban for ban in bans if ban.since > latest.get(ban.target, -_FOREVER)]


def strongest(bans: Iterable[Ban]) -> dict[str, Ban]:
    """One ban per target: the one that ends last."""
    chosen: dict[str, Ban] = {}
    for ban in bans:
        current = chosen.get(ban.target)
        if current is None or ban.end > current.end:
            chosen[ban.target] = ban
    return chosen


def latest(chains: Iterable[Chain]) -> dict[str, Chain]:
    """One chain per target: the one remembered longest (the one its latest ban made)."""
    chosen: dict[str, Chain] = {}
    for chain in chains:
        current = chosen.get(chain.target)
        if current is None or chain.remember_until > current.remember_until:
            chosen[chain.target] = chain
    return chosen


class _Offender:
    """One address's recent refusals, counted in a window that opens at the first refusal after the
    previous window closed, and its ban chain: `chain` bans in a row, remembered until `remember_until`.
    A fixed window never bans on fewer than `offences` refusals in `offence_window`; a sliding
    approximation could, and a ban must be earned."""

    __slots__ = ("chain", "count", "remember_until", "window_start")

    def __init__(self, window_start: float, chain: int = 0, remember_until: float = -_FOREVER) -> None:
        self.count = 0
        self.window_start = window_start
        self.chain = chain
        self.remember_until = remember_until

    def end(self, window: float) -> float:
        """When this record stops mattering: its window has closed and its chain is forgotten."""
        return max(self.window_start + window, self.remember_until)


class BanTable:
    """One worker's bans and offenders (see the module docstring); every time is wall-clock `now`."""

    def __init__(self, settings: Bans) -> None:
        self._enabled = settings.enabled
        self._offences = settings.offences
        self._window = settings.offence_window
        self._durations = settings.durations
        self._memory = settings.memory
        self._max = settings.max_entries
        self._reason = f"{settings.offences} refusals within {settings.offence_window:g} s"
        self.allowlist = NetworkSet(settings.allowlist)
        self._own: dict[str, Ban] = {}
        self._stored: dict[str, Ban] = {}
        self._offenders: dict[str, _Offender] = {}
        self._changes = 0

    def __len__(self) -> int:
        """Entries held: own bans, stored bans and offender records (at most max_entries)."""
        return len(self._own) + len(self._stored) + len(self._offenders)

    @property
    def changes(self) -> int:
        """Counts changes to this table's own bans: a worker saves own() and chains() when it differs
        from the count at its last save. Chains need no count of their own: one only grows or starts
        again when an own ban is made, and is forgotten with a lifted own ban; one that runs out is
        left out by the next load anyway."""
        return self._changes

    def check(self, ip: str, prefix: str, now: float) -> Ban | None:
        """The active ban on this client's address or prefix; None when there is none or the address
        is allowlisted. `ip` normalised (net.client_identity.normalise_ip), `prefix` its client_prefix."""
        own, stored = self._own, self._stored
        if not (own.get(ip) or stored.get(ip) or own.get(prefix) or stored.get(prefix)):
            return None  # the common case, kept to four lookups
        ban = self._find(ip, now) or self._find(prefix, now)
        if ban is None or self.allowlist.contains(ip):
            return None
        return ban

    def suspect(self, ip: str, now: float) -> bool:
        """Whether the shield refused this address recently (an offence in the open window) or banned
        it within `memory`: admission control serves such clients last."""
        record = self._offenders.get(ip)
        if record is None:
            return False
        return (record.count > 0 and now - record.window_start <= self._window) or now < record.remember_until

    def recent_offences(self, ip: str, now: float) -> int:
        """Refusals of this address in its open window, plus the bans in its remembered chain: what
        makes its next challenge harder."""
        record = self._offenders.get(ip)
        if record is None:
            return 0
        count = record.count if now - record.window_start <= self._window else 0
        return count + (record.chain if now < record.remember_until else 0)

    def offence(self, ip: str, prefix: str, now: float) -> Ban | None:
        """Record one refusal of this client (a 429 or 403 the shield answered); the new ban when it
        earns one. Refusals of a client already banned (its connection predates the ban) count for
        nothing, and an allowlisted client is not even tracked."""
        if not self._enabled or self._find(ip, now) or self._find(prefix, now):
            return None
        record = self._offenders.get(ip)
        if record is None:
            if self.allowlist.contains(ip) or not self._make_room(now):
                return None
            record = self._offenders[ip] = _Offender(now)
        elif now - record.window_start > self._window:
            record.window_start, record.count = now, 0
        record.count += 1
        if record.count < self._offences:
            return None
        level = record.chain if now < record.remember_until else 0
        until = now + self._durations[min(level, len(self._durations) - 1)]
        if ip not in self._own and not self._make_room(now):
            return None  # full of bans that may not be pushed out; the next refusal tries again
        record.count, record.chain, record.remember_until = 0, level + 1, until + self._memory
        ban = self._own[ip] = Ban(ip, until, self._reason, "auto", level, now)
        self._changes += 1
        return ban

    def own(self, now: float) -> list[Ban]:
        """The active bans this table made or adopted: what its worker saves to its file."""
        return [ban for ban in self._own.values() if ban.end > now]

    def chains(self, now: float) -> list[Chain]:
        """The chains of this table's offenders still remembered at `now`: what its worker saves beside
        own(), so that an offender's next ban after a restart is as long as it would have been without
        one, even when its last ban has ended. At most max_entries, like every record here."""
        return [
            Chain(target, record.chain, record.remember_until)
            for target, record in self._offenders.items()
            if record.chain and record.remember_until > now
        ]

    def adopt(self, bans: Iterable[Ban], chains: Iterable[Chain] = ()) -> None:
        """Take back this table's own bans and chains from before a restart (its worker's file), so
        they are saved again and an offender's chain goes on from the level it had reached. A chain
        alone bans no one: it only lengthens the offender's next ban."""
        remembered = list(chains)
        for ban in bans:
            current = self._own.get(ban.target)
            if current is None or ban.end > current.end:
                self._own[ban.target] = ban
            if ban.source == "auto" and ban.until is not None:
                remembered.append(Chain(ban.target, ban.level + 1, ban.until + self._memory))
        for chain in remembered:
            record = self._offenders.setdefault(chain.target, _Offender(-_FOREVER))  # no window open
            record.chain = max(record.chain, chain.length)
            record.remember_until = max(record.remember_until, chain.remember_until)
        self._trim()

    def merge(self, bans: Iterable[Ban], lifts: Iterable[Lift] = ()) -> None:
        """Take the store's contents (state/ban_store.load_all): its bans replace those of the previous
        merge, and its lifts also lift the own bans they cover, forgetting those offenders' chains
        (an operator who lifts a ban has judged it wrong)."""
        lifts = tuple(lifts)
        own = self._own
        self._stored = {  # a stored copy of an own ban (the worker's own file) would only take room
            target: ban
            for target, ban in strongest(apply_lifts(bans, lifts)).items()
            if target not in own or ban.end > own[target].end
        }
        for target in {lift.target for lift in lifts} & self._own.keys():
            if not apply_lifts((self._own[target],), lifts):
                del self._own[target]
                self._offenders.pop(target, None)
                self._changes += 1
        self._trim()

    def _find(self, target: str, now: float) -> Ban | None:
        ban = self._own.get(target)
        if ban is not None:
            if ban.until is None or ban.until > now:
                return ban
            del self._own[target]
        ban = self._stored.get(target)
        if ban is not None:
            if ban.until is None or ban.until > now:
                return ban
            del self._stored[target]
        return None

    def _make_room(self, now: float) -> bool:
        """Free a slot if the table is full: the expired entries of a sample (the oldest of each dict),
        else the sampled offender record that ends soonest; never a ban that is still on. False when
        nothing may go. Survivors of the sample move to the back (clock-style), so the next eviction
        looks at others."""
        if len(self) < self._max:
            return True
        window = self._window
        offenders = list(islice(self._offenders.items(), _EVICTION_SAMPLE))
        stored = list(islice(self._stored.items(), _EVICTION_SAMPLE))
        own = list(islice(self._own.items(), _EVICTION_SAMPLE))
        ends = [(record.end(window), key) for key, record in offenders]
        gone_offenders = {key for record_end, key in ends if record_end <= now}
        gone_stored = {key for key, ban in stored if ban.end <= now}
        gone_own = {key for key, ban in own if ban.end <= now}
        if not (gone_offenders or gone_stored or gone_own) and ends:
            gone_offenders.add(min(ends)[1])
        _rotate(self._offenders, offenders, gone_offenders)
        _rotate(self._stored, stored, gone_stored)
        _rotate(self._own, own, gone_own)
        self._changes += bool(gone_own)
        return len(self) < self._max

    def _trim(self) -> None:
        """After a merge or an adoption: back within max_entries, offender records first, then the
        bans ending soonest."""
        excess = len(self) - self._max
        if excess <= 0:
            return
        window = self._window
        for key in heapq.nsmallest(excess, self._offenders, key=lambda k: self._offenders[k].end(window)):
            del self._offenders[key]
        excess = len(self) - self._max
        if excess <= 0:
            return
        candidates = [
            (ban.end, table, key) for table in (self._stored, self._own) for key, ban in table.items()
        ]
        for _, table, key in heapq.nsmallest(excess, candidates, key=lambda item: item[0]):
            del table[key]
            if table is self._own:
                self._changes += 1


def _rotate(table: dict[str, _T], sample: list[tuple[str, _T]], gone: set[str]) -> None:
    """Drop the `gone` keys of a sample taken from the front of `table`; move the rest to the back."""
    for key, value in sample:
        del table[key]
        if key not in gone:
            table[key] = value
