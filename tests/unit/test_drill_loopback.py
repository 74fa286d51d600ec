"""Drill targets must be this machine's loopback; drill sources are spread over 127.0.0.0/8 as documented."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shieldwall.drill.loopback import (
    ATTACK_SOURCES,
    LEGIT_SOURCES,
    NotLoopbackError,
    loopback_endpoint,
    require_loopback,
    source_addresses,
)

REFUSED = [
    "10.0.0.1",
    "192.168.1.1",
    "example.org",
    "::2",
    "::ffff:8.8.8.8",
    "0.0.0.0",
    "::",
    "8.8.8.8:80",
    "[::2]:8080",
    "http://10.0.0.1:8080/",
    "http://example.org/",
    "http://[::ffff:8.8.8.8]:80/",
    "127.1",  # inet_aton would take it; we take only strict dotted quads
    "2130706433",
    "0x7f000001",
    "localhost.example.org",
    "127.0.0.1.nip.io",
    "",
    "fe80::1%lo",
]


@pytest.mark.parametrize("target", REFUSED)
def test_anything_off_loopback_is_refused(target):
    with pytest.raises(NotLoopbackError, match="drill"):
        require_loopback(target)


@pytest.mark.parametrize(
    ("target", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("127.255.255.254", "127.255.255.254"),
        ("127.128.3.4:8080", "127.128.3.4"),
        ("::1", "::1"),
        ("[::1]:8080", "::1"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("::ffff:127.0.0.5", "127.0.0.5"),
        ("localhost", "127.0.0.1"),
        ("LOCALHOST.", "127.0.0.1"),
        ("http://localhost:8080/x", "127.0.0.1"),
        ("http://127.9.9.9/", "127.9.9.9"),
        ("http://[::1]:81/", "::1"),
    ],
)
def test_loopback_targets_are_accepted_as_canonical_addresses(target, address):
    assert require_loopback(target) == address


@pytest.mark.parametrize(
    ("target", "endpoint"),
    [
        ("127.0.0.1", ("127.0.0.1", 80)),
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("[::1]:9", ("::1", 9)),
        ("::1", ("::1", 80)),
        ("http://localhost:8081/path", ("127.0.0.1", 8081)),
        ("http://127.0.0.1/", ("127.0.0.1", 80)),
    ],
)
def test_endpoints(target, endpoint):
    assert loopback_endpoint(target) == endpoint


@pytest.mark.parametrize("target", ["127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:http", "[::1]:x"])
def test_bad_ports_are_refused(target):
    with pytest.raises(ValueError, match="port"):
        loopback_endpoint(target)


def test_the_pools_are_disjoint_and_keep_clear_of_the_servers():
    legit, attack = ipaddress.ip_network(LEGIT_SOURCES), ipaddress.ip_network(ATTACK_SOURCES)
    servers = ipaddress.ip_network("127.0.0.0/16")
    assert not legit.overlaps(attack)
    assert not legit.overlaps(servers) and not attack.overlaps(servers)
    assert legit.subnet_of(ipaddress.ip_network("127.0.0.0/8"))
    assert attack.subnet_of(ipaddress.ip_network("127.0.0.0/8"))


@given(
    count=st.integers(0, 3000),
    per_prefix=st.integers(1, 254),
    seed=st.integers(0, 2**32),
    pool=st.sampled_from([LEGIT_SOURCES, ATTACK_SOURCES]),
)
def test_sources_are_distinct_loopback_addresses_laid_out_per_prefix(count, per_prefix, seed, pool):
    addresses = source_addresses(count, seed, pool=pool, per_prefix=per_prefix)
    network = ipaddress.ip_network(pool)
    assert len(addresses) == count == len(set(addresses))
    prefixes: dict[str, int] = {}
    for text in addresses:
        address = ipaddress.ip_address(text)
        assert address in network
        assert require_loopback(text) == text
        assert text.rpartition(".")[2] not in ("0", "255")
        prefix = text.rpartition(".")[0]
        prefixes[prefix] = prefixes.get(prefix, 0) + 1
    assert len(prefixes) == -(-count // per_prefix)
    assert all(n <= per_prefix for n in prefixes.values())
    assert sum(n < per_prefix for n in prefixes.values()) <= 1  # only the last /24 may be partly used


def test_sources_depend_on_the_seed_only():
    assert source_addresses(50, 7) == source_addresses(50, 7)
    assert source_addresses(50, 7) != source_addresses(50, 8)


def test_thousands_of_sources_spread_over_thousands_of_prefixes():
    addresses = source_addresses(5000, 1)
    assert len({a.rpartition(".")[0] for a in addresses}) == 5000


def test_a_pool_too_small_or_off_loopback_is_refused():
    with pytest.raises(ValueError, match="need 2 /24s"):
        source_addresses(255, 1, pool="127.200.1.0/24", per_prefix=254)
    with pytest.raises(ValueError, match=r"inside 127\.0\.0\.0/8"):
        source_addresses(1, 1, pool="10.0.0.0/8")
    with pytest.raises(ValueError, match="per_prefix"):
        source_addresses(1, 1, per_prefix=255)
