"""The active bans written for other tools (`shieldwall export bans --format ...`):

- nft: an nftables script (`nft -f FILE`) that (re)creates the table the mirror keeps, elements included;
- ipset: `ipset restore` input, two hash:net sets with timeouts, for iptables hosts;
- cidr-list: one CIDR a line, for anything that reads a block list;
- flowspec: BGP FlowSpec rules in ExaBGP's configuration syntax, for an ISP or scrubbing partner that
  takes them, so the traffic is discarded before it reaches this machine's link.

Every format holds the same entries (entries.ban_set: allowlisted bans left out). Timeouts (nft,
ipset) count from when the file is loaded; cidr-list and FlowSpec rules do not expire by themselves:
export again and replace them."""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from typing import Final

from shieldwall.firewall.entries import BanSet, Network
from shieldwall.firewall.nft_json import CHAIN, PRIORITY, SETS, by_set

FORMATS: Final = ("nft", "ipset", "cidr-list", "flowspec")
IPSET_MAX_TIMEOUT: Final = 2_147_483  # seconds: the kernel keeps ipset timeouts in milliseconds, in 31 bits
IPSET_MAXELEM: Final = 1 << 20


def export(
    fmt: str, bans: BanSet, now: float, *, table: str = "shieldwall", destinations: Sequence[Network] = ()
) -> str:
    """`bans` in format `fmt` (one of FORMATS); `destinations` only matter to flowspec."""
    if fmt == "nft":
        return nft_script(bans, now, table)
    if fmt == "ipset":
        return ipset_restore(bans, now, table)
    if fmt == "cidr-list":
        return cidr_list(bans)
    if fmt == "flowspec":
        return flowspec(bans, now, destinations)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


def nft_script(bans: BanSet, now: float, table: str) -> str:
    """A script that replaces `inet <table>` with the sets holding `bans` and the dropping chain, in one
    atomic transaction (declaring the table first lets the delete work when there is none)."""
    lines = [
        "#!/usr/sbin/nft -f",
        f"# {_summary(bans, now)}.",
        f"# `nft -f FILE` replaces the table inet {table} with this one; timeouts count from then.",
        f"table inet {table}",
        f"delete table inet {table}",
        f"table inet {table} {{",
    ]
    entries_of = by_set(bans.entries())
    for spec in SETS.values():
        lines += [f"\tset {spec.name} {{", f"\t\ttype {spec.type}", f"\t\tflags {', '.join(spec.flags)}"]
        if entries_of[spec.name]:
            lines.append("\t\telements = {")
            for entry in entries_of[spec.name]:
                timeout = entry.timeout(now)
                lines.append(
                    f"\t\t\t{entry.text}" + ("" if timeout is None else f" timeout {timeout}s") + ","
                )
            lines.append("\t\t}")
        lines.append("\t}")
    lines += [
        f"\tchain {CHAIN} {{",
        f"\t\ttype filter hook prerouting priority {PRIORITY}; policy accept;",
        *(f"\t\t{spec.protocol} saddr @{spec.name} counter drop" for spec in SETS.values()),
        "\t}",
        "}",
    ]
    return "\n".join(lines) + "\n"


def ipset_restore(bans: BanSet, now: float, table: str) -> str:
    """`ipset restore` input: sets <table>-banned4 and <table>-banned6 (hash:net, per-entry timeouts;
    an entry without one is permanent), flushed and filled. ipset caps a timeout at IPSET_MAX_TIMEOUT
    (about 24 days): a longer ban gets that much, so export again within that time."""
    lines = []
    for version, entries in ((4, bans.v4), (6, bans.v6)):
        name = f"{table}-banned{version}"
        family = "inet" if version == 4 else "inet6"
        lines += [
            f"create {name} hash:net family {family} timeout 0 maxelem {IPSET_MAXELEM} -exist",
            f"flush {name}",
        ]
        for entry in entries:
            timeout = entry.timeout(now)
            suffix = "" if timeout is None else f" timeout {min(timeout, IPSET_MAX_TIMEOUT)}"
            lines.append(f"add {name} {entry.cidr}{suffix}")
    return "\n".join(lines) + "\n"


def cidr_list(bans: BanSet) -> str:
    """One CIDR a line, IPv4 first; an address as a /32 or /128."""
    return "".join(f"{entry.cidr}\n" for entry in bans.entries())


def flowspec(bans: BanSet, now: float, destinations: Sequence[Network] = ()) -> str:
    """ExaBGP `flow` routes discarding the banned sources, to paste into the `neighbor` block that speaks
    `ipv4 flow` / `ipv6 flow` with the provider. With `destinations` (your own prefixes, which most
    providers require a rule to match), one route per ban and destination of its family; a family with
    none gets routes on the source alone."""
    lines = [
        f"# {_summary(bans, now)}, as BGP FlowSpec routes (ExaBGP syntax).",
        "# They do not expire: export again and replace them, to withdraw the bans that ended.",
    ]
    if not bans:
        return "\n".join(lines) + "\n"
    lines.append("flow {")
    names: set[str] = set()
    for entry in bans.entries():
        targets: list[Network | None] = [d for d in destinations if d.version == entry.version]
        targets = targets or [None]
        for destination in targets:
            base = "shieldwall-" + re.sub(r"[^0-9A-Za-z]+", "-", entry.cidr)
            if destination is not None:
                base += "-to-" + re.sub(r"[^0-9A-Za-z]+", "-", destination.with_prefixlen)
            name, number = base, 1
            while name in names:  # two IPv6 spellings can come out alike once ':' and '/' are '-'
                number += 1
                name = f"{base}-{number}"
            names.add(name)
            until = "permanent" if entry.timeout(now) is None else f"until {_utc(entry.end)}"
            match = [f"source {_flow_prefix(entry.network)};"]
            if destination is not None:
                match.append(f"destination {_flow_prefix(destination)};")
            lines += [
                f"\t# {until}",
                f"\troute {name} {{",
                "\t\tmatch {",
                *(f"\t\t\t{item}" for item in match),
                "\t\t}",
                "\t\tthen {",
                "\t\t\tdiscard;",
                "\t\t}",
                "\t}",
            ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _flow_prefix(network: Network) -> str:
    """ExaBGP writes an IPv6 FlowSpec prefix with its offset (RFC 8956): 2001:db8::/64/0."""
    return network.with_prefixlen if network.version == 4 else f"{network.with_prefixlen}/0"


def _summary(bans: BanSet, now: float) -> str:
    count = len(bans)
    return f"shieldwall bans at {_utc(now)}: {count} entr{'y' if count == 1 else 'ies'}"


def _utc(moment: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(moment))
