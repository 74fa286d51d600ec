"""PROXY protocol v1/v2 parser: round trips at every split point, strict rejection, junk never crashes."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from shieldwall.net.proxy_protocol import ProxyHeader, ProxyProtocolError, parse_proxy_header

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(command: int, family: int, body: bytes, *, version: int = 2) -> bytes:
    """A v2 header around `body` (address block + TLVs), length field set from the body."""
    return V2_SIG + bytes([version << 4 | command, family]) + struct.pack("!H", len(body)) + body


def tlv(kind: int, value: bytes) -> bytes:
    return bytes([kind]) + struct.pack("!H", len(value)) + value


# --- generated headers: (wire bytes, expected result without `consumed`) ------------------------------

ports = st.integers(0, 65535)
tlvs = st.lists(st.tuples(st.integers(0, 255), st.binary(max_size=40)), max_size=6).map(
    lambda items: b"".join(tlv(kind, value) for kind, value in items)
)


@st.composite
def v1_tcp(draw: st.DrawFn) -> tuple[bytes, tuple[str | None, int | None, str | None, int | None]]:
    version = draw(st.sampled_from([4, 6]))
    src, dst = draw(st.ip_addresses(v=version)), draw(st.ip_addresses(v=version))
    spell = draw(st.sampled_from([str, lambda a: a.exploded, lambda a: str(a).upper()]))
    sport, dport = draw(ports), draw(ports)
    line = f"PROXY TCP{version} {spell(src)} {spell(dst)} {sport} {dport}\r\n".encode()
    return line, (str(src), sport, str(dst), dport)


@st.composite
def v1_unknown(draw: st.DrawFn) -> tuple[bytes, tuple[None, None, None, None]]:
    rest = draw(st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=91))
    line = b"PROXY UNKNOWN" + (b" " + rest.encode() if rest else b"") + b"\r\n"
    return line, (None, None, None, None)


@st.composite
def v2_proxy_ip(draw: st.DrawFn) -> tuple[bytes, tuple[str | None, int | None, str | None, int | None]]:
    version = draw(st.sampled_from([4, 6]))
    src, dst = draw(st.ip_addresses(v=version)), draw(st.ip_addresses(v=version))
    sport, dport = draw(ports), draw(ports)
    body = src.packed + dst.packed + struct.pack("!HH", sport, dport) + draw(tlvs)
    return v2(0x1, 0x11 if version == 4 else 0x21, body), (str(src), sport, str(dst), dport)


@st.composite
def v2_no_address(draw: st.DrawFn) -> tuple[bytes, tuple[None, None, None, None]]:
    kind = draw(st.sampled_from(["local", "unix", "unspec"]))
    if kind == "local":  # LOCAL: family ignored, body skipped whatever it holds
        header = v2(0x0, draw(st.integers(0, 255)), draw(st.binary(max_size=300)))
    elif kind == "unix":
        header = v2(0x1, 0x31, draw(st.binary(min_size=216, max_size=216)) + draw(tlvs))
    else:
        header = v2(0x1, 0x00, draw(st.binary(max_size=300)))
    return header, (None, None, None, None)


headers = st.one_of(v1_tcp(), v1_unknown(), v2_proxy_ip(), v2_no_address())


LONGEST_V1 = b"PROXY UNKNOWN " + b"f" * 91 + b"\r\n"  # 107 bytes, the spec's worst case


@settings(max_examples=300)
@given(headers, st.binary(max_size=64))
@example((LONGEST_V1, (None, None, None, None)), b"")
def test_round_trip_at_every_split_point(generated, trailing):
    header, (src, sport, dst, dport) = generated
    expected = ProxyHeader(src, sport, dst, dport, consumed=len(header))
    wire = header + trailing
    for split in range(len(header)):
        assert parse_proxy_header(wire[:split]) is None, f"complete too early at {split}"
    assert parse_proxy_header(wire) == expected
    assert parse_proxy_header(bytearray(wire)) == expected


def _parse_or_reject(buf: bytes) -> ProxyHeader | None:
    try:
        result = parse_proxy_header(buf)
    except ProxyProtocolError:
        return None
    assert result is None or 0 < result.consumed <= len(buf)
    return result


@settings(max_examples=500)
@given(
    st.sampled_from(
        [b"", b"PROXY ", b"PROXY TCP4 ", b"PROXY TCP6 ", b"PROXY UNKNOWN", V2_SIG, V2_SIG + b"\x21"]
    ),
    st.binary(max_size=300),
)
@example(b"", b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n")
def test_junk_only_ever_raises_proxy_protocol_error(prefix, junk):
    _parse_or_reject(prefix + junk)


@settings(max_examples=300)
@given(headers, st.data())
def test_corrupted_header_only_ever_raises_proxy_protocol_error(generated, data):
    header = bytearray(generated[0])
    position = data.draw(st.integers(0, len(header) - 1))
    header[position] = data.draw(st.integers(0, 255))
    _parse_or_reject(bytes(header))


# --- table-driven: what is accepted, and what is refused ----------------------------------------------

V4_BLOCK = bytes([192, 0, 2, 1, 198, 51, 100, 2]) + struct.pack("!HH", 5678, 443)


@pytest.mark.parametrize(
    ("wire", "expected"),
    [
        (b"PROXY TCP4 192.0.2.1 198.51.100.2 5678 443\r\nGET", ("192.0.2.1", 5678, "198.51.100.2", 443, 44)),
        (b"PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n", ("0.0.0.0", 0, "255.255.255.255", 65535, 44)),
        (b"PROXY TCP6 2001:DB8::1 ::1 1 2\r\n", ("2001:db8::1", 1, "::1", 2, 32)),
        (b"PROXY TCP6 ::ffff:192.0.2.1 ::1 1 2\r\n", ("::ffff:c000:201", 1, "::1", 2, 37)),
        (b"PROXY UNKNOWN\r\n", (None, None, None, None, 15)),
        (b"PROXY UNKNOWN " + b"f" * 91 + b"\r\n", (None, None, None, None, 107)),
        (v2(0x1, 0x11, V4_BLOCK), ("192.0.2.1", 5678, "198.51.100.2", 443, 28)),
        (
            v2(0x1, 0x11, V4_BLOCK + tlv(0x04, b"") + tlv(0x02, b"example.org")),
            ("192.0.2.1", 5678, "198.51.100.2", 443, 45),
        ),
        (
            v2(0x1, 0x21, ipaddress.IPv6Address("2001:db8::7").packed * 2 + struct.pack("!HH", 1, 2)),
            ("2001:db8::7", 1, "2001:db8::7", 2, 52),
        ),
        (v2(0x0, 0x00, b""), (None, None, None, None, 16)),
        (v2(0x0, 0x11, V4_BLOCK), (None, None, None, None, 28)),  # LOCAL ignores the block
        (v2(0x1, 0x31, bytes(216)), (None, None, None, None, 232)),
        (v2(0x1, 0x00, b"whatever"), (None, None, None, None, 24)),
    ],
)
def test_accepts(wire, expected):
    assert parse_proxy_header(wire) == ProxyHeader(*expected)


@pytest.mark.parametrize(
    ("wire", "why"),
    [
        (b"GET / HTTP/1.1\r\n", "no PROXY protocol signature"),
        (b"\x16\x03\x01", "no PROXY protocol signature"),  # a TLS ClientHello: proxy_protocol misconfigured
        (b"PROXZ", "bad v1 signature"),
        (b"PROXYTCP4", "bad v1 signature"),
        (b"PROXY TCP5", "not TCP4, TCP6 or UNKNOWN"),
        (b"PROXY tcp4 ", "not TCP4, TCP6 or UNKNOWN"),
        (b"PROXY UNKNOWNX", "not TCP4, TCP6 or UNKNOWN"),
        (b"PROXY \r\n", "not TCP4, TCP6 or UNKNOWN"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3", "more than addresses and ports"),
        (b"PROXY TCP4 1.2.3.x", "more than addresses and ports"),
        (b"PROXY TCP6 fe80::1%eth0", "more than addresses and ports"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 80 443\n", "not printable"),
        (b"PROXY UNKNOWN \x00", "not printable"),
        (b"PROXY UNKNOWN \xff", "not printable"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 80 443\rX", "CR without LF"),
        (b"PROXY UNKNOWN " + b"f" * 92, "no CRLF within 107"),  # 106 bytes: no room left for CRLF
        (b"PROXY UNKNOWN " + b"f" * 92 + b"\r\n", "no CRLF within 107"),  # 108 bytes with CRLF
        (b"PROXY TCP4 01.2.3.4 5.6.7.8 80 443\r\n", "not an IP address"),
        (b"PROXY TCP4 1.2.3.256 5.6.7.8 80 443\r\n", "not an IP address"),
        (b"PROXY TCP4 1.2.3 5.6.7.8 80 443\r\n", "not an IP address"),
        (b"PROXY TCP4 ::1 5.6.7.8 80 443\r\n", "is not IPv4"),
        (b"PROXY TCP6 1.2.3.4 ::1 80 443\r\n", "is not IPv6"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 080 443\r\n", "leading zeros"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 80 65536\r\n", "out of range"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 80 1234567\r\n", "leading zeros"),
        (b"PROXY TCP4 1.2.3.4  5.6.7.8 80\r\n", "exactly"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 80\r\n", "exactly"),
        (b"PROXY TCP4 1.2.3.4 5.6.7.8 80 443 \r\n", "more than addresses and ports"),
        (b"\r\n\r\n\x00\r\nQUIX", "bad v2 signature"),
        (b"\r\n\r\n\x01", "bad v2 signature"),
        (V2_SIG + b"\x11", "version 1"),
        (V2_SIG + b"\x22", "neither LOCAL nor PROXY"),
        (V2_SIG + b"\x21\x12", "not TCP, UNIX stream or UNSPEC"),  # UDP over IPv4 on a TCP listener
        (V2_SIG + b"\x21\x41", "not TCP, UNIX stream or UNSPEC"),
        (V2_SIG + b"\x21\x10", "not TCP, UNIX stream or UNSPEC"),
        (v2(0x1, 0x11, V4_BLOCK[:11]), "shorter than the 12-byte"),
        (v2(0x1, 0x21, V4_BLOCK), "shorter than the 36-byte"),
        (v2(0x1, 0x31, bytes(215)), "shorter than the 216-byte"),
        (V2_SIG + b"\x21\x11" + struct.pack("!H", 12 + 1025), "exceeds"),
        (V2_SIG + b"\x20\x00" + struct.pack("!H", 216 + 1025), "exceeds"),
        (V2_SIG + b"\x21\x11\xff\xff", "exceeds"),
        (v2(0x1, 0x11, V4_BLOCK + b"\x04\x00"), "ends inside a TLV header"),
        (v2(0x1, 0x11, V4_BLOCK + tlv(0x04, b"ab")[:-1]), "runs past"),
        (v2(0x1, 0x11, V4_BLOCK + tlv(0x04, b"") + b"\x02\x00\x05ab"), "runs past"),
    ],
)
def test_rejects(wire, why):
    with pytest.raises(ProxyProtocolError, match=why):
        parse_proxy_header(wire)


@pytest.mark.parametrize(
    "partial",
    [
        b"",
        b"P",
        b"PROXY",
        b"PROXY TCP",
        b"PROXY UNKNOWN " + b"f" * 91,  # 105 bytes: the CRLF may still fit
        b"PROXY TCP4 1.2.3.4 5.6.7.8 80 443\r",
        V2_SIG[:5],
        V2_SIG + b"\x21\x11\x00",
        V2_SIG + b"\x21\x11\x00\x0c" + V4_BLOCK[:11],
        V2_SIG + b"\x20\x00" + struct.pack("!H", 216 + 1024),  # the largest LOCAL we accept, still coming
    ],
)
def test_waits_for_more(partial):
    assert parse_proxy_header(partial) is None
