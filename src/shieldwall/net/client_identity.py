"""Who the client is: the socket (or PROXY header) peer, or the X-Forwarded-For hop that a trusted
proxy vouches for; and the /24 or /64 prefix that limits and worker steering group clients by.

Every address passes through `normalise_ip` first, so an IPv4 client is one key whether it reached a
dual-stack socket as 1.2.3.4 or as ::ffff:1.2.3.4, and a spoofed header never adds a second spelling.
Sans-io; these run per connection or per request, so the common IPv4 cases avoid `ipaddress` objects.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Final

from shieldwall.net.networks import MAX_IP_TEXT, NetworkSet, classify

_V6_PREFIX_MASK: Final = ((1 << 64) - 1) << 64
# A request through more trusted hops than this is not a real deployment: stop walking rather than
# spend time on a header a trusted-but-compromised hop padded with thousands of trusted addresses.
_MAX_FORWARDED_HOPS: Final = 32
_MAX_PORT_DIGITS: Final = 5


def normalise_ip(ip: str) -> str:
    """The canonical text of an IP address; IPv4-mapped IPv6 becomes plain IPv4.
    Raises ValueError for anything else (zone ids, leading zeros, names, garbage)."""
    return str(classify(ip))


def client_prefix(ip: str) -> str:
    """The client's network: "203.0.113.0/24" for IPv4, "2001:db8:1:2::/64" for IPv6.

    Per connection, so IPv4 slices the validated text. `python -m timeit`, Python 3.11 on the 2-core dev
    machine: str(ip_network(ip + "/24", strict=False)) takes 5.0 µs, this IPv4 path 0.5 µs;
    IPv6 parses once and takes 9 µs against 12.7 µs for ip_network.
    """
    address = classify(ip)
    if isinstance(address, str):
        return address[: address.rfind(".")] + ".0/24"
    return f"{ipaddress.IPv6Address(int(address) & _V6_PREFIX_MASK)}/64"


def resolve_client_ip(peer_ip: str, forwarded_for: Sequence[bytes], trusted: NetworkSet) -> str:
    """The client address to account requests to.

    `forwarded_for` holds the raw values of every X-Forwarded-For line, in order. They are believed only
    when the peer is trusted; then the combined list is walked right to left (each proxy appends the
    address it saw), skipping trusted hops, and the first untrusted address is the client. A malformed
    entry ends the walk at the last trusted hop: whatever lies left of garbage was never vouched for.
    Raises ValueError only when `peer_ip` itself is not an address (a TCP peer always is)."""
    client = normalise_ip(peer_ip)
    if not forwarded_for or not trusted.contains(client):
        return client
    hops = 0
    for line in reversed(forwarded_for):
        for raw in reversed(line.split(b",")):
            entry = raw.strip(b" \t")
            if not entry:
                continue  # empty list elements are legal HTTP list syntax
            hops += 1
            address = _forwarded_address(entry) if hops <= _MAX_FORWARDED_HOPS else None
            if address is None:
                return client
            if not trusted.contains(address):
                return address
            client = address
    return client


def _forwarded_address(entry: bytes) -> str | None:
    """One X-Forwarded-For element → normalised address, or None when malformed. Accepts "1.2.3.4",
    "1.2.3.4:5678", "2001:db8::1" and "[2001:db8::1]:80"; refuses names, "unknown" and zone ids."""
    if len(entry) > MAX_IP_TEXT + 8 or not entry.isascii():
        return None
    text = entry.decode("ascii")
    if text.startswith("["):
        host, closed, port = text[1:].partition("]")
        if not closed or ":" not in host or (port and not (port[0] == ":" and _is_port(port[1:]))):
            return None
    elif text.count(":") == 1:
        host, _, port = text.partition(":")
        if not _is_port(port):
            return None
    else:
        host = text
    try:
        return normalise_ip(host)
    except ValueError:
        return None


def _is_port(text: str) -> bool:
    return 0 < len(text) <= _MAX_PORT_DIGITS and text.isdigit() and int(text) <= 65535
