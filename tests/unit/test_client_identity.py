"""Client identity: address normalisation, prefixes, trusted proxies and X-Forwarded-For spoofing."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shieldwall.net.client_identity import client_prefix, normalise_ip, resolve_client_ip
from shieldwall.net.networks import NetworkSet

TRUSTED = NetworkSet(["10.0.0.0/8", "192.0.2.0/24", "2001:db8:ffff::/48"])
CLIENT = "198.51.100.7"


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("0.0.0.0", "0.0.0.0"),
        ("255.255.255.255", "255.255.255.255"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("::FFFF:cb00:7107", "203.0.113.7"),
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("::1", "::1"),
    ],
)
def test_normalise_ip(ip, expected):
    assert normalise_ip(ip) == expected


@pytest.mark.parametrize(
    "ip",
    [
        "",
        "203.0.113",
        "203.0.113.256",
        "203.0.113.07",  # leading zero: octal to some parsers
        "203.0.113.7 ",
        "203.0.113.7\n",
        "\uff12\uff10\uff13.0.113.7",  # fullwidth digits
        "fe80::1%eth0",
        "2001:db8::1::2",
        "2001:db8::g",
        "[2001:db8::1]",
        "localhost",
        "1" * 100 + ":",
    ],
)
def test_normalise_ip_refuses(ip):
    with pytest.raises(ValueError):
        normalise_ip(ip)


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        ("203.0.113.77", "203.0.113.0/24"),
        ("10.0.0.0", "10.0.0.0/24"),
        ("::ffff:203.0.113.77", "203.0.113.0/24"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8::1", "2001:db8::/64"),
        ("::1", "::/64"),
    ],
)
def test_client_prefix(ip, expected):
    assert client_prefix(ip) == expected


def test_client_prefix_refuses_garbage():
    with pytest.raises(ValueError):
        client_prefix("no.such.address")


@pytest.mark.parametrize(
    ("ip", "trusted"),
    [
        ("10.1.2.3", True),
        ("::ffff:10.1.2.3", True),
        ("192.0.2.255", True),
        ("192.0.3.0", False),
        ("11.0.0.1", False),
        ("2001:db8:ffff:1::1", True),
        ("2001:db8:fffe::1", False),
        ("010.1.2.3", False),
        ("garbage", False),
        ("", False),
    ],
)
def test_trusted_proxies_contains(ip, trusted):
    assert TRUSTED.contains(ip) is trusted
    assert TRUSTED.contains(ip) is trusted  # second answer comes from the cache


def test_mapped_cidr_trusts_the_ipv4_network():
    proxies = NetworkSet(["::ffff:172.16.0.0/108"])
    assert proxies.contains("172.16.9.9")
    assert proxies.contains("::ffff:172.16.9.9")
    assert not proxies.contains("172.32.0.1")


def test_empty_trust_list_trusts_nothing():
    assert not NetworkSet([]).contains("10.0.0.1")


def test_cache_is_bounded():
    proxies = NetworkSet(["10.0.0.0/8"], cache_size=8)
    for i in range(100):
        assert proxies.contains(f"10.0.0.{i}")
        assert not proxies.contains(f"11.0.0.{i}")
    assert proxies.contains.cache_info().currsize <= 8  # type: ignore[attr-defined]


def test_bad_cidr_is_refused():
    with pytest.raises(ValueError):
        NetworkSet(["10.0.0.0/33"])


@pytest.mark.parametrize(
    ("peer", "forwarded_for", "expected"),
    [
        # the header is believed only from trusted peers
        ("203.0.113.9", [b"1.2.3.4"], "203.0.113.9"),
        ("203.0.113.9", [b"10.0.0.1"], "203.0.113.9"),
        ("::ffff:203.0.113.9", [CLIENT.encode()], "203.0.113.9"),
        ("10.0.0.1", [], "10.0.0.1"),
        ("10.0.0.1", [CLIENT.encode()], CLIENT),
        ("::ffff:10.0.0.1", [CLIENT.encode()], CLIENT),
        ("2001:db8:ffff::1", [b"2001:db8:1::5"], "2001:db8:1::5"),
        # right to left: what the client itself wrote on the left is never believed
        ("10.0.0.1", [b"6.6.6.6, " + CLIENT.encode()], CLIENT),
        ("10.0.0.1", [b"10.9.9.9, " + CLIENT.encode()], CLIENT),
        ("10.0.0.1", [CLIENT.encode() + b", 10.0.0.5, 192.0.2.9"], CLIENT),
        ("10.0.0.1", [b"6.6.6.6", CLIENT.encode() + b" ,\t10.0.0.5"], CLIENT),
        ("10.0.0.1", [b", " + CLIENT.encode() + b",,", b""], CLIENT),
        ("10.0.0.1", [CLIENT.encode() + b", ::ffff:10.0.0.9"], CLIENT),  # mapped spelling of a trusted hop
        ("10.0.0.1", [b"10.0.0.2, 10.0.0.3"], "10.0.0.2"),  # all trusted: the leftmost hop
        # ports and IPv6 spellings
        ("10.0.0.1", [CLIENT.encode() + b":5678"], CLIENT),
        ("10.0.0.1", [b"[2001:db8::1]:80"], "2001:db8::1"),
        ("10.0.0.1", [b"[2001:db8::1]"], "2001:db8::1"),
        ("10.0.0.1", [b"2001:DB8:0::1"], "2001:db8::1"),
        ("10.0.0.1", [b"::ffff:" + CLIENT.encode()], CLIENT),
        ("10.0.0.1", [b"[::ffff:" + CLIENT.encode() + b"]:1"], CLIENT),
        # garbage stops the walk at the last trusted hop
        ("10.0.0.1", [CLIENT.encode() + b", garbage"], "10.0.0.1"),
        ("10.0.0.1", [b"unknown, 10.0.0.5"], "10.0.0.5"),
        ("10.0.0.1", [b"garbage, " + CLIENT.encode()], CLIENT),
        ("10.0.0.1", [b"010.0.0.1"], "10.0.0.1"),
        ("10.0.0.1", [b"example.org"], "10.0.0.1"),
        ("10.0.0.1", [b"fe80::1%eth0"], "10.0.0.1"),
        ("10.0.0.1", [b"[198.51.100.7]"], "10.0.0.1"),
        ("10.0.0.1", [CLIENT.encode() + b":99999"], "10.0.0.1"),
        ("10.0.0.1", [CLIENT.encode() + b":"], "10.0.0.1"),
        ("10.0.0.1", [CLIENT.encode() + b":+80"], "10.0.0.1"),
        ("10.0.0.1", [b"[2001:db8::1]x"], "10.0.0.1"),
        ("10.0.0.1", [b"[2001:db8::1"], "10.0.0.1"),
        ("10.0.0.1", [b'"[2001:db8::1]:80"'], "10.0.0.1"),  # RFC 7239 quoting is not XFF
        ("10.0.0.1", [CLIENT.encode() + b"\xc2\xa0"], "10.0.0.1"),
        ("10.0.0.1", [CLIENT.encode() + b" 1.2.3.4"], "10.0.0.1"),
        ("10.0.0.1", [b"1.2.3.4;" + CLIENT.encode()], "10.0.0.1"),
        # a header padded with trusted hops is not walked forever
        ("10.0.0.1", [CLIENT.encode() + b", " + b", ".join([b"10.0.0.2"] * 31)], CLIENT),
        ("10.0.0.1", [CLIENT.encode() + b", " + b", ".join([b"10.0.0.2"] * 32)], "10.0.0.2"),
    ],
)
def test_resolve_client_ip(peer, forwarded_for, expected):
    assert resolve_client_ip(peer, forwarded_for, TRUSTED) == expected


def test_resolve_with_no_trusted_proxies_uses_the_peer():
    assert resolve_client_ip("10.0.0.1", [CLIENT.encode()], NetworkSet([])) == "10.0.0.1"


entries = st.one_of(
    st.ip_addresses().map(lambda a: str(a).encode()),
    st.sampled_from(
        [b"10.0.0.5", b"192.0.2.1", b"[2001:db8:ffff::9]:443", b"::ffff:10.1.1.1", b"1.2.3.4:80"]
    ),
    st.binary(max_size=20),
)


def addresses_written_in(forwarded_for):
    """Every address any element could be read as (over-approximated: with or without port/brackets)."""
    found = set()
    for line in forwarded_for:
        for piece in line.split(b","):
            text = piece.strip(b" \t").decode("latin-1")
            for form in (text, text.rpartition(":")[0], text.strip("[]"), text.rpartition("]")[0][1:]):
                with contextlib.suppress(ValueError):
                    found.add(normalise_ip(form))
    return found


@given(st.sampled_from(["10.0.0.1", "203.0.113.9"]), st.lists(st.lists(entries, max_size=5), max_size=3))
def test_resolved_address_is_the_peer_or_one_written_in_the_header(peer, lines):
    forwarded_for = [b", ".join(line) for line in lines]
    result = resolve_client_ip(peer, forwarded_for, TRUSTED)
    assert normalise_ip(result) == result  # never garbage, always one spelling
    if not TRUSTED.contains(peer):
        assert result == peer
    else:
        assert result == peer or result in addresses_written_in(forwarded_for)


@pytest.mark.parametrize(
    ("target", "covered", "overlapping"),
    [
        ("10.1.2.3", True, True),
        ("10.1.2.0/24", True, True),
        ("10.0.0.0/7", False, True),  # wider than the set's /8: only part of it is in
        ("11.0.0.0/24", False, False),
        ("::ffff:10.1.2.3", True, True),  # IPv4-mapped is IPv4
        ("2001:db8:1:2::/64", True, True),
        ("2001:db9::/64", False, False),
    ],
)
def test_network_set_covers_and_overlaps(target: str, covered: bool, overlapping: bool) -> None:
    networks = NetworkSet(["10.0.0.0/8", "2001:db8::/32"])
    assert networks.covers(target) is covered
    assert networks.overlaps(target) is overlapping
