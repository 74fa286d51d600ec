"""IP addresses and sets of networks, sans-io: the one place the address rules live.

`classify` validates an address text (IPv4 kept as text, the fast path; IPv4-mapped IPv6 becomes IPv4);
`NetworkSet` answers "is this address in one of these networks?" for trusted proxies, rules' client
lists and the ban allowlist, with a bounded per-address cache (the same few addresses ask again and
again, and a flood of distinct ones must not grow memory).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Final

IPV4_OCTET: Final = "(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"  # 0-255, no leading zeros
_IPV4: Final = re.compile(rf"{IPV4_OCTET}\.{IPV4_OCTET}\.{IPV4_OCTET}\.{IPV4_OCTET}")
MAX_IP_TEXT: Final = 45  # ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255
_MAPPED_V4: Final = ipaddress.IPv6Network("::ffff:0:0/96")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def classify(ip: str) -> str | ipaddress.IPv6Address:
    """The one place the address rules live: validated IPv4 text (IPv4-mapped IPv6 included) or a
    plain IPv6 address; ValueError otherwise. The regex keeps IPv4 clear of ipaddress's cost."""
    if _IPV4.fullmatch(ip):
        return ip
    if ":" not in ip or "%" in ip or len(ip) > MAX_IP_TEXT:
        raise ValueError(f"not an IP address: {ip[:MAX_IP_TEXT]!r}")
    address = ipaddress.IPv6Address(ip)
    mapped = address.ipv4_mapped
    return address if mapped is None else str(mapped)


def parse_network(text: str) -> Network:
    """`text` (a CIDR or an address) as a network; IPv4-mapped IPv6 (::ffff:10.0.0.0/104) as the IPv4
    network it means, since mapped addresses are looked up as IPv4. Raises ValueError."""
    network = ipaddress.ip_network(text, strict=False)
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_MAPPED_V4):
        return ipaddress.IPv4Network((int(network.network_address) & 0xFFFFFFFF, network.prefixlen - 96))
    return network


def within(inner: Network, outer: Network) -> bool:
    return (
        inner.version == outer.version
        and inner.prefixlen >= outer.prefixlen
        and int(inner.network_address) & int(outer.netmask) == int(outer.network_address)
    )


class NetworkSet:
    """Networks given as CIDR texts; `contains(ip)` is memoised per address text, bounded."""

    def __init__(self, cidrs: Sequence[str], *, cache_size: int = 4096) -> None:
        self.networks = tuple(parse_network(cidr) for cidr in cidrs)
        self._v4 = tuple((int(n.network_address), int(n.netmask)) for n in self.networks if n.version == 4)
        self._v6 = tuple((int(n.network_address), int(n.netmask)) for n in self.networks if n.version == 6)
        # `contains(ip)`: whether `ip` lies in one of the networks (False for malformed text too),
        # memoised per address text by lru_cache (C, O(1) eviction of the least recently used).
        self.contains: Callable[[str], bool] = lru_cache(maxsize=cache_size)(self._lookup)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def covers(self, target: str) -> bool:
        """Whether every address of `target` (an address or a CIDR) is in the set."""
        network = parse_network(target)
        return any(within(network, member) for member in self.networks)

    def overlaps(self, target: str) -> bool:
        """Whether some address of `target` (an address or a CIDR) is in the set."""
        network = parse_network(target)
        return any(within(network, member) or within(member, network) for member in self.networks)

    def _lookup(self, ip: str) -> bool:
        if not (self._v4 or self._v6):
            return False
        try:
            address = classify(ip)
        except ValueError:
            return False
        if isinstance(address, str):
            # classify() has checked a strict dotted quad, so inet_aton's lenient forms never reach it.
            # timeit here: 0.19 µs against 3.24 µs for int(ipaddress.IPv4Address(address)) — this runs
            # on every cache miss, and a flood of distinct addresses is all misses.
            value, networks = int.from_bytes(socket.inet_aton(address), "big"), self._v4
        else:
            value, networks = int(address), self._v6
        return any(value & mask == network for network, mask in networks)
