"""Drill traffic stays on this machine: targets must be loopback, and sources are loopback addresses.

A drill is a flood by design; pointed at someone else's server it is an attack. So every target a
drill is given passes `require_loopback` first, which accepts only literal addresses in 127.0.0.0/8 or
::1, and the name "localhost" (as 127.0.0.1), and resolves nothing: a name that a resolver (or
/etc/hosts) maps somewhere else can never slip through.

Sources: Linux answers for the whole of 127.0.0.0/8 on `lo`, so a client can `bind` to any 127.x.y.z
before it connects and the server sees that address as its peer, with no setup. That is how one machine
plays thousands of distinct clients. The drill's layout of 127.0.0.0/8:

    127.0.0.0/16     servers and the operator (shield, origin, nginx listen on 127.0.0.1): never a source
    127.16.0.0/12    LEGIT_SOURCES: visitors (4,096 /24s)
    127.128.0.0/9    ATTACK_SOURCES: attackers (32,768 /24s)

Disjoint pools keep the two populations apart for whoever reads the shield's logs; `per_prefix` decides
how many sources share each /24, so limits keyed by /24 prefix can be exercised (many sources in few
prefixes) or evaded (one source per prefix, like a botnet spread over the internet). Host numbers .0 and
.255 are never used.
"""

from __future__ import annotations

import ipaddress
import random
from typing import Final
from urllib.parse import urlsplit

from shieldwall.net.networks import classify

LEGIT_SOURCES: Final = "127.16.0.0/12"
ATTACK_SOURCES: Final = "127.128.0.0/9"
_LOOPBACK_V4: Final = ipaddress.IPv4Network("127.0.0.0/8")
_HOSTS_PER_24: Final = 254  # .1 .. .254


class NotLoopbackError(ValueError):
    """A drill was pointed at something that is not this machine's loopback."""


def require_loopback(target: str) -> str:
    """The loopback address that `target` names, as canonical text ("127.0.0.1", "::1"), or
    NotLoopbackError. `target` is a host ("127.0.0.1", "::1", "[::1]", "localhost"), a HOST:PORT, or
    a URL ("http://127.0.0.1:8080/path"). IPv4-mapped ::ffff:127.x.y.z counts as its IPv4 address."""
    host = _host_part(target)
    if host.lower().rstrip(".") == "localhost":
        return "127.0.0.1"
    try:
        address = classify(host)
    except ValueError:
        raise NotLoopbackError(
            f"drill target {target!r}: {host!r} is not an IP address; drills accept only loopback "
            "addresses (127.0.0.0/8, ::1) or 'localhost', and resolve no other name"
        ) from None
    if isinstance(address, str):
        loopback = ipaddress.IPv4Address(address) in _LOOPBACK_V4
    else:
        loopback = address == ipaddress.IPv6Address("::1")
    if not loopback:
        raise NotLoopbackError(
            f"drill target {target!r}: {address} is not on this machine's loopback; "
            "drills only ever send to 127.0.0.0/8 or ::1"
        )
    return str(address)


def loopback_endpoint(target: str, default_port: int = 80) -> tuple[str, int]:
    """(address, port) of a loopback `target` (see require_loopback); `default_port` when none is given."""
    address = require_loopback(target)
    if "://" in target:
        port = urlsplit(target).port  # ValueError for a port that is not a number in range
        return address, default_port if port is None else port
    if target.startswith("["):
        port_text = target.partition("]")[2].removeprefix(":")
    else:
        port_text = target.partition(":")[2] if target.count(":") == 1 else ""
    if not port_text:
        return address, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"drill target {target!r}: bad port {port_text!r}")
    return address, int(port_text)


def source_addresses(count: int, seed: int, *, pool: str = ATTACK_SOURCES, per_prefix: int = 1) -> list[str]:
    """`count` distinct source addresses in `pool` (a network inside 127.0.0.0/8, /24 or larger),
    `per_prefix` of them in each /24 (the last /24 may hold fewer), the /24s and hosts drawn at random
    but the same for the same seed. ValueError when the pool cannot hold that many."""
    network = ipaddress.IPv4Network(pool)
    if not network.subnet_of(_LOOPBACK_V4) or network.prefixlen > 24:
        raise ValueError(f"source pool {pool} must be a /24 or larger inside 127.0.0.0/8")
    if not 1 <= per_prefix <= _HOSTS_PER_24:
        raise ValueError(f"per_prefix must be within 1..{_HOSTS_PER_24}")
    if count < 0:
        raise ValueError("count must not be negative")
    prefixes_needed = -(-count // per_prefix)
    prefixes_available = 1 << (24 - network.prefixlen)
    if prefixes_needed > prefixes_available:
        raise ValueError(
            f"{count} sources at {per_prefix} per /24 need {prefixes_needed} /24s; "
            f"{pool} has {prefixes_available}"
        )
    rng = random.Random(seed)
    base = int(network.network_address)
    addresses: list[str] = []
    for prefix in rng.sample(range(prefixes_available), prefixes_needed):
        take = min(per_prefix, count - len(addresses))
        for host in rng.sample(range(1, _HOSTS_PER_24 + 1), take):
            addresses.append(str(ipaddress.IPv4Address(base + (prefix << 8) + host)))
    return addresses


def _host_part(target: str) -> str:
    """The host of a host, HOST:PORT, [v6]:PORT or URL, without brackets."""
    if "://" in target:
        return urlsplit(target).hostname or ""
    if target.startswith("["):
        return target[1:].partition("]")[0]
    if target.count(":") == 1:  # HOST:PORT; two or more colons is a bare IPv6 address
        return target.partition(":")[0]
    return target
