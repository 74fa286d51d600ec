"""The active bans as firewall sets must hold them: one entry per target, with the end of the ban on it
that lasts longest.

A ban whose target overlaps `bans.allowlist` stays out, on purpose: the shield never refuses an
allowlisted address, and a kernel rule dropping a whole banned /24 would refuse the allowlisted
addresses in it too. The shield still enforces such a ban itself, on the addresses the allowlist does
not cover.

Ban targets are what limiter.bans.ban_target allows: an address, or a client prefix of one length per
family (IPv4 /24, IPv6 /64). Addresses and prefixes go to different sets (nft_json.py), so no two
elements of one set ever overlap, as an nftables interval set requires. Times are wall-clock epoch
seconds; a permanent ban ends at `FOREVER`."""

from __future__ import annotations

import ipaddress
import math
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Protocol

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Key = tuple[int, int, int]  # (family 4 or 6, first address as an integer, prefix length)

FOREVER: Final = math.inf
_WIDTH: Final = {4: 32, 6: 128}
_FAMILY: Final = {4: socket.AF_INET, 6: socket.AF_INET6}


class BanLike(Protocol):
    """What a ban must tell a firewall (limiter.bans.Ban does): what it covers and when it ends."""

    @property
    def target(self) -> str: ...

    @property
    def end(self) -> float: ...


@dataclass(frozen=True, slots=True)
class Entry:
    """One element of a set: a network, as integers (sets of 100,000 are built in well under a second
    this way, where ipaddress objects take seconds), and when its ban ends."""

    version: int
    address: int
    length: int
    end: float

    @property
    def key(self) -> Key:
        return self.version, self.address, self.length

    @property
    def single(self) -> bool:
        """Whether it is one address (a /32 or a /128)."""
        return self.length == _WIDTH[self.version]

    @property
    def address_text(self) -> str:
        return socket.inet_ntop(
            _FAMILY[self.version], self.address.to_bytes(_WIDTH[self.version] // 8, "big")
        )

    @property
    def cidr(self) -> str:
        """ "203.0.113.7/32", "2001:db8:1:2::/64": always with its length."""
        return f"{self.address_text}/{self.length}"

    @property
    def text(self) -> str:
        """ "203.0.113.7" for one address, "203.0.113.0/24" for a prefix: how nft prints them."""
        return self.address_text if self.single else self.cidr

    @property
    def network(self) -> Network:
        if self.version == 4:
            return ipaddress.IPv4Network((self.address, self.length))
        return ipaddress.IPv6Network((self.address, self.length))

    def timeout(self, now: float) -> int | None:
        """Whole seconds left, rounded up (the kernel must never let a banned client in early); at least
        1; None for a permanent ban."""
        if self.end == FOREVER:
            return None
        return max(1, math.ceil(self.end - now))


@dataclass(frozen=True, slots=True)
class BanSet:
    """The entries of each family, sorted by address, and how many bans stayed out (allowlisted)."""

    v4: tuple[Entry, ...] = ()
    v6: tuple[Entry, ...] = ()
    allowlisted: int = 0

    def __len__(self) -> int:
        return len(self.v4) + len(self.v6)

    def entries(self) -> tuple[Entry, ...]:
        return self.v4 + self.v6


def parse_target(text: str) -> Key:
    """An address or a CIDR as a Key (host bits cleared); ValueError for anything else."""
    address, slash, length_text = text.partition("/")
    version = 6 if ":" in address else 4
    try:
        packed = socket.inet_pton(_FAMILY[version], address)
    except OSError:
        raise ValueError(f"not an IP address or CIDR: {text!r}") from None
    width = _WIDTH[version]
    length = width if not slash else int(length_text) if length_text.isdigit() else -1
    if not 0 <= length <= width:
        raise ValueError(f"not an IP address or CIDR: {text!r}")
    value = int.from_bytes(packed, "big")
    return version, value >> (width - length) << (width - length), length


def ban_set(bans: Iterable[BanLike], now: float, allowlist: Iterable[Network] = ()) -> BanSet:
    """The entries for the bans still active at `now`, but the allowlisted ones."""
    ends: dict[str, float] = {}
    for ban in bans:
        end = ban.end
        if end > now and end > ends.get(ban.target, -FOREVER):
            ends[ban.target] = end
    allowed = [(network.version, int(network.network_address), network.prefixlen) for network in allowlist]
    kept: list[Entry] = []
    allowlisted = 0
    for target, end in ends.items():
        key = parse_target(target)
        if allowed and _overlaps(key, allowed):
            allowlisted += 1
        else:
            kept.append(Entry(*key, end))
    kept.sort(key=lambda entry: entry.key)
    return BanSet(
        v4=tuple(entry for entry in kept if entry.version == 4),
        v6=tuple(entry for entry in kept if entry.version == 6),
        allowlisted=allowlisted,
    )


def _overlaps(key: Key, allowed: Sequence[Key]) -> bool:
    """Whether `key` and one of the allowlisted networks share an address: the two agree on the bits
    of the shorter length."""
    version, address, length = key
    width = _WIDTH[version]
    for other_version, other, other_length in allowed:
        shift = width - min(length, other_length)
        if other_version == version and address >> shift == other >> shift:
            return True
    return False
