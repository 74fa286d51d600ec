"""PROXY protocol v1 (text) and v2 (binary) header parsing, per HAProxy's proxy-protocol.txt.

An L4 balancer sends this header first so we learn the real client address. It is only read when a
listener is configured for it, and the bytes may still come from anyone if the operator got that wrong,
so the parser is strict: it answers None only while the bytes seen so far can still become a valid
header, and raises ProxyProtocolError as soon as they cannot. Sans-io: feed it the connection's buffer.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Final

_V1_PREFIX: Final = b"PROXY "
# The longest legal v1 line, CRLF included ("PROXY UNKNOWN" + two full IPv6 addresses + two ports).
_V1_MAX_LINE: Final = 107
# v1 is US-ASCII text: printable characters only, then CRLF.
_V1_PRINTABLE: Final = frozenset(range(0x20, 0x7F))
_V1_PROTOCOLS: Final = (b"TCP4", b"TCP6", b"UNKNOWN")
_V1_TCP_CHARS: Final = frozenset(b"0123456789abcdefABCDEF.: ")

_V2_SIGNATURE: Final = b"\r\n\r\n\x00\r\nQUIT\n"
_V2_FIXED: Final = 16  # signature, version/command, family/transport, 2-byte length
_V2_LOCAL: Final = 0x0
_V2_PROXY: Final = 0x1
# Family/transport byte → size of the address block it announces. DGRAM (0x12, 0x22, 0x32) is refused:
# a TCP listener cannot be relaying a UDP flow, so such a header means a misconfigured or hostile sender.
_V2_ADDRESS_SIZES: Final = {0x00: 0, 0x11: 12, 0x21: 36, 0x31: 216}
# TLVs (ALPN, authority, unique id ≤ 128 B, SSL details, cloud vendor ids) take a few hundred bytes in
# practice; allowing more only lets a bad sender make us buffer more before we can say no.
_V2_MAX_TLV_BYTES: Final = 1024
_V2_LARGEST_BLOCK: Final = 216  # bound for LOCAL and UNSPEC, whose address block is not interpreted
_TLV_HEADER: Final = 3


@dataclass(frozen=True, slots=True)
class ProxyHeader:
    """What the header said. Addresses are None for LOCAL, UNKNOWN, AF_UNIX and AF_UNSPEC: the caller
    then keeps the socket's own endpoints. `consumed` is the header's length in bytes."""

    src_addr: str | None
    src_port: int | None
    dst_addr: str | None
    dst_port: int | None
    consumed: int


class ProxyProtocolError(Exception):
    """The bytes are not a valid PROXY header: the connection must be dropped."""


def parse_proxy_header(buf: bytes | bytearray) -> ProxyHeader | None:
    """Parse the header at the start of `buf`; None when more bytes are needed."""
    if not buf:
        return None
    if buf[0] == _V2_SIGNATURE[0]:
        return _parse_v2(buf)
    if buf[0] == _V1_PREFIX[0]:
        return _parse_v1(buf)
    raise ProxyProtocolError("no PROXY protocol signature")


# --- version 1 -------------------------------------------------------------------------------------


def _parse_v1(buf: bytes | bytearray) -> ProxyHeader | None:
    seen = bytes(buf[:_V1_MAX_LINE])
    if not seen.startswith(_V1_PREFIX[: len(seen)]):
        raise ProxyProtocolError("bad v1 signature")
    end = seen.find(b"\r")
    line = seen if end < 0 else seen[:end]
    if not _V1_PRINTABLE.issuperset(line):
        raise ProxyProtocolError("v1 line holds a byte that is not printable US-ASCII")
    _check_v1_so_far(line, complete=end >= 0)
    if len(line) > _V1_MAX_LINE - 2:
        raise ProxyProtocolError(f"v1 line has no CRLF within {_V1_MAX_LINE} bytes")
    if end < 0:
        return None
    if end + 1 == len(seen):
        return None  # the LF may still come
    if seen[end + 1] != 0x0A:
        raise ProxyProtocolError("v1 line ends in CR without LF")
    return _decode_v1(line.decode("ascii"), end + 2)


def _check_v1_so_far(line: bytes, *, complete: bool) -> None:
    """Fail fast on a partial line: the protocol word must be on its way to TCP4, TCP6 or UNKNOWN,
    and a TCP line holds only address and port characters in at most six fields."""
    proto, space, rest = line[len(_V1_PREFIX) :].partition(b" ")
    if space or complete:
        if proto not in _V1_PROTOCOLS:
            raise ProxyProtocolError(f"v1 protocol {proto[:8]!r} is not TCP4, TCP6 or UNKNOWN")
    elif not any(known.startswith(proto) for known in _V1_PROTOCOLS):
        raise ProxyProtocolError(f"v1 protocol {proto[:8]!r} is not TCP4, TCP6 or UNKNOWN")
    if proto != b"UNKNOWN" and (not _V1_TCP_CHARS.issuperset(rest) or rest.count(b" ") > 3):
        raise ProxyProtocolError("v1 TCP line holds more than addresses and ports")


def _decode_v1(line: str, consumed: int) -> ProxyHeader:
    fields = line.split(" ")
    proto = fields[1]  # _check_v1_so_far made sure it is one of _V1_PROTOCOLS
    if proto == "UNKNOWN":
        # The spec tells receivers to ignore whatever follows UNKNOWN on the line.
        return ProxyHeader(None, None, None, None, consumed)
    if len(fields) != 6 or "" in fields:
        raise ProxyProtocolError("v1 line needs exactly: PROXY proto src dst sport dport, one space apart")
    version = 4 if proto == "TCP4" else 6
    return ProxyHeader(
        _v1_address(fields[2], version),
        _v1_port(fields[4]),
        _v1_address(fields[3], version),
        _v1_port(fields[5]),
        consumed,
    )


def _v1_address(text: str, version: int) -> str:
    try:
        address = ipaddress.ip_address(text)  # rejects leading zeros; zone ids never pass _V1_TCP_CHARS
    except ValueError:
        raise ProxyProtocolError(f"v1 address {text[:40]!r} is not an IP address") from None
    if address.version != version:
        raise ProxyProtocolError(f"v1 address {text!r} is not IPv{version}")
    return str(address)


def _v1_port(text: str) -> int:
    if not (0 < len(text) <= 5 and text.isascii() and text.isdigit()) or (text[0] == "0" and text != "0"):
        raise ProxyProtocolError(f"v1 port {text[:8]!r} is not a decimal without leading zeros")
    port = int(text)
    if port > 65535:
        raise ProxyProtocolError(f"v1 port {port} is out of range")
    return port


# --- version 2 -------------------------------------------------------------------------------------


def _parse_v2(buf: bytes | bytearray) -> ProxyHeader | None:
    head = bytes(buf[:_V2_FIXED])
    sig = head[: len(_V2_SIGNATURE)]
    if sig != _V2_SIGNATURE[: len(sig)]:
        raise ProxyProtocolError("bad v2 signature")
    if len(head) > 12:
        version, command = head[12] >> 4, head[12] & 0x0F
        if version != 2:
            raise ProxyProtocolError(f"v2 header has version {version}")
        if command not in (_V2_LOCAL, _V2_PROXY):
            raise ProxyProtocolError(f"v2 command {command:#x} is neither LOCAL nor PROXY")
    if len(head) > 13 and head[12] & 0x0F == _V2_PROXY and head[13] not in _V2_ADDRESS_SIZES:
        raise ProxyProtocolError(f"v2 family/transport {head[13]:#04x} is not TCP, UNIX stream or UNSPEC")
    if len(head) < _V2_FIXED:
        return None
    command, family, length = head[12] & 0x0F, head[13], int.from_bytes(head[14:16], "big")
    # LOCAL and UNSPEC: the spec says to ignore the family and addresses, so only a size bound applies.
    ignored = command == _V2_LOCAL or family == 0x00
    needed = 0 if ignored else _V2_ADDRESS_SIZES[family]
    if length < needed:
        raise ProxyProtocolError(f"v2 length {length} is shorter than the {needed}-byte address block")
    if length > (_V2_LARGEST_BLOCK if ignored else needed) + _V2_MAX_TLV_BYTES:
        raise ProxyProtocolError(f"v2 length {length} exceeds the address block plus TLVs we allow")
    consumed = _V2_FIXED + length
    if len(buf) < consumed:
        return None
    if ignored:
        return ProxyHeader(None, None, None, None, consumed)
    block = bytes(buf[_V2_FIXED:consumed])
    _check_tlvs(block[needed:])
    if family == 0x31:
        return ProxyHeader(None, None, None, None, consumed)
    size = 4 if family == 0x11 else 16
    src, dst = _v2_address(block[:size]), _v2_address(block[size : 2 * size])
    ports = block[2 * size : 2 * size + 4]
    return ProxyHeader(src, int.from_bytes(ports[:2], "big"), dst, int.from_bytes(ports[2:], "big"), consumed)


def _v2_address(packed: bytes) -> str:
    if len(packed) == 4:
        return ".".join(map(str, packed))
    return str(ipaddress.IPv6Address(packed))


def _check_tlvs(tlvs: bytes) -> None:
    """TLVs are skipped, but they must tile the rest of the block exactly: a TLV that overruns it, or
    stray bytes after the last one, means the sender is not speaking the protocol."""
    offset = 0
    while offset < len(tlvs):
        if len(tlvs) - offset < _TLV_HEADER:
            raise ProxyProtocolError("v2 TLV area ends inside a TLV header")
        offset += _TLV_HEADER + int.from_bytes(tlvs[offset + 1 : offset + 3], "big")
        if offset > len(tlvs):
            raise ProxyProtocolError("v2 TLV runs past the header length")
