"""libnftables JSON (what `nft -j -f -` reads) for the ban sets: one `inet` table, two sets per family
and a chain dropping the packets whose source is in one of them.

    table inet shieldwall {
        set banned4 { type ipv4_addr; flags timeout; }                    # addresses
        set banned4_nets { type ipv4_addr; flags interval, timeout; }     # prefixes (/24)
        set banned6 { type ipv6_addr; flags timeout; }
        set banned6_nets { type ipv6_addr; flags interval, timeout; }     # prefixes (/64)
        chain prerouting {
            type filter hook prerouting priority -300; policy accept;
            ip saddr @banned4 counter drop
            ip saddr @banned4_nets counter drop
            ip6 saddr @banned6 counter drop
            ip6 saddr @banned6_nets counter drop
        }
    }

Why two sets a family: an interval set (needed for prefixes) makes nft 1.0.6 read all its elements
before it changes one, 1.5 s with 100,000 of them, where a hash set costs milliseconds whatever it
holds.
Automatic bans, the many, are on addresses; prefix bans are the operator's, and few.

Why prerouting at priority -300 (raw) rather than the input hook: a packet from a banned client is
dropped before connection tracking sees it, so a SYN flood from banned addresses costs no conntrack
entries and no routing lookup. It also covers traffic the machine forwards (containers, a NAT
gateway): a banned client reaches nothing behind this machine either. `timeout` lets each element
expire with its ban, in the kernel, even while the shield is stopped. The counters show what the
kernel dropped (`nft list chain inet shieldwall prerouting`).

Every transaction first (re)declares the table, the sets and the chain, and rewrites the chain's
rules, so it works on an empty kernel as on one where someone flushed the ruleset, and is atomic.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from shieldwall.firewall.entries import BanSet, Entry

CHAIN: Final = "prerouting"
PRIORITY: Final = -300  # NF_IP_PRI_RAW: before conntrack (-200)

Command = dict[str, Any]


@dataclass(frozen=True, slots=True)
class SetSpec:
    name: str
    type: str
    protocol: str  # the payload protocol whose saddr the rule matches
    flags: tuple[str, ...]


# By (family, holds prefixes), in the order they are declared and matched.
SETS: Final = {
    (4, False): SetSpec("banned4", "ipv4_addr", "ip", ("timeout",)),
    (4, True): SetSpec("banned4_nets", "ipv4_addr", "ip", ("interval", "timeout")),
    (6, False): SetSpec("banned6", "ipv6_addr", "ip6", ("timeout",)),
    (6, True): SetSpec("banned6_nets", "ipv6_addr", "ip6", ("interval", "timeout")),
}


def set_of(entry: Entry) -> SetSpec:
    return SETS[entry.version, not entry.single]


def by_set(entries: Iterable[Entry]) -> dict[str, list[Entry]]:
    """`entries` by the name of the set each belongs in, every set present, in SETS' order."""
    grouped: dict[str, list[Entry]] = {spec.name: [] for spec in SETS.values()}
    for entry in entries:
        grouped[set_of(entry).name].append(entry)
    return grouped


def structure(table: str) -> list[Command]:
    """The table, the sets and the chain, declared (a no-op where they exist) and the chain's rules
    written afresh."""
    commands: list[Command] = [{"add": {"table": {"family": "inet", "name": table}}}]
    for spec in SETS.values():
        commands.append(
            {
                "add": {
                    "set": {
                        "family": "inet",
                        "table": table,
                        "name": spec.name,
                        "type": spec.type,
                        "flags": list(spec.flags),
                    }
                }
            }
        )
    chain = {"family": "inet", "table": table, "name": CHAIN}
    commands.append(
        {
            "add": {
                "chain": {
                    **chain,
                    "type": "filter",
                    "hook": "prerouting",
                    "prio": PRIORITY,
                    "policy": "accept",
                }
            }
        }
    )
    commands.append({"flush": {"chain": chain}})
    for spec in SETS.values():
        match = {
            "op": "==",
            "left": {"payload": {"protocol": spec.protocol, "field": "saddr"}},
            "right": f"@{spec.name}",
        }
        commands.append(
            {
                "add": {
                    "rule": {
                        **chain,
                        "chain": CHAIN,
                        "expr": [{"match": match}, {"counter": None}, {"drop": None}],
                    }
                }
            }
        )
    return commands


def full(table: str, bans: BanSet, now: float) -> list[Command]:
    """Replace every set's elements with `bans`, timeouts counted from `now`."""
    commands = structure(table)
    for name, entries in by_set(bans.entries()).items():
        commands.append({"flush": {"set": _set(table, name)}})
        if entries:
            commands.append(
                {"add": {"element": {**_set(table, name), "elem": [element(e, now) for e in entries]}}}
            )
    return commands


def delta(table: str, removed: Iterable[Entry], added: Iterable[Entry], now: float) -> list[Command]:
    """Delete `removed` (they must be in the sets, or the whole transaction fails) and add `added`."""
    commands = structure(table)
    for name, entries in by_set(removed).items():
        if entries:
            commands.append(
                {"delete": {"element": {**_set(table, name), "elem": [_value(e) for e in entries]}}}
            )
    for name, entries in by_set(added).items():
        if entries:
            commands.append(
                {"add": {"element": {**_set(table, name), "elem": [element(e, now) for e in entries]}}}
            )
    return commands


def element(entry: Entry, now: float) -> Any:
    """One set element: its value, with a timeout unless the ban is permanent."""
    timeout = entry.timeout(now)
    value = _value(entry)
    return value if timeout is None else {"elem": {"val": value, "timeout": timeout}}


def document(commands: list[Command]) -> bytes:
    """What `nft -j -f -` reads."""
    return json.dumps({"nftables": commands}, separators=(",", ":")).encode()


def _value(entry: Entry) -> Any:
    if entry.single:
        return entry.address_text
    return {"prefix": {"addr": entry.address_text, "len": entry.length}}


def _set(table: str, name: str) -> dict[str, str]:
    return {"family": "inet", "table": table, "name": name}
