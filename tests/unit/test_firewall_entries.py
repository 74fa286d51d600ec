"""firewall/entries.py: which bans a firewall set holds, with which timeout, and which it leaves out."""

from __future__ import annotations

import ipaddress

import pytest

from shieldwall.firewall.entries import FOREVER, Entry, ban_set, parse_target
from shieldwall.limiter.bans import Ban

NOW = 1_700_000_000.0


def ban(target: str, until: float | None, since: float = NOW - 10) -> Ban:
    return Ban(target, until, "test", "auto" if until is not None else "manual", 0, since)


def texts(entries: tuple[Entry, ...]) -> list[str]:
    return [entry.text for entry in entries]


def test_one_entry_per_target_with_the_longest_ban_sorted_by_family_and_address() -> None:
    bans = ban_set(
        [
            ban("203.0.113.7", NOW + 60),
            ban("203.0.113.7", NOW + 600),
            ban("2001:db8::7", NOW + 60),
            ban("198.51.100.0/24", None),
            ban("192.0.2.1", NOW - 1),  # over
        ],
        NOW,
    )
    assert texts(bans.v4) == ["198.51.100.0/24", "203.0.113.7"]
    assert texts(bans.v6) == ["2001:db8::7"]
    assert [entry.end for entry in bans.v4] == [FOREVER, NOW + 600]
    assert len(bans) == 3 and bans.allowlisted == 0


def test_timeouts_round_up_and_permanent_bans_have_none() -> None:
    entry = Entry(*parse_target("203.0.113.7"), NOW + 599.2)
    assert entry.timeout(NOW) == 600
    assert Entry(*entry.key, NOW + 0.001).timeout(NOW) == 1
    assert Entry(*entry.key, FOREVER).timeout(NOW) is None
    assert (entry.text, entry.cidr, entry.network) == (
        "203.0.113.7",
        "203.0.113.7/32",
        ipaddress.ip_network(entry.cidr),
    )


def test_targets_parse_to_integers_and_print_back_as_ipaddress_spells_them() -> None:
    for text in (
        "203.0.113.0/24",
        "0.0.0.0/0",
        "2001:db8:1:2::/64",
        "2001:db8::7",
        "::1",
        "2001:db8:0:1:1:1:1:1",
    ):
        network = ipaddress.ip_network(text)
        entry = Entry(*parse_target(text), FOREVER)
        assert (entry.cidr, entry.network) == (network.with_prefixlen, network)
    assert parse_target("203.0.113.9/24") == parse_target("203.0.113.0/24")  # host bits cleared
    for bad in ("203.0.113", "203.0.113.7/33", "203.0.113.7/", "2001:db8::/x", "bad"):
        with pytest.raises(ValueError, match="not an IP address or CIDR"):
            parse_target(bad)


def test_bans_overlapping_the_allowlist_stay_out() -> None:
    allowlist = [ipaddress.ip_network("198.51.100.10/32"), ipaddress.ip_network("2001:db8:1::/48")]
    bans = ban_set(
        [
            ban("198.51.100.0/24", NOW + 60),  # holds an allowlisted address
            ban("198.51.101.0/24", NOW + 60),
            ban("2001:db8:1:2::/64", NOW + 60),  # inside an allowlisted network
            ban("2001:db8:2::5", NOW + 60),
        ],
        NOW,
        allowlist,
    )
    assert texts(bans.entries()) == ["198.51.101.0/24", "2001:db8:2::5"]
    assert bans.allowlisted == 2


def test_an_address_inside_a_banned_prefix_keeps_its_own_entry() -> None:
    """They go to different sets (an address set and a prefix set), so both are kept: the address stays
    banned when the prefix's ban ends first."""
    bans = ban_set([ban("203.0.113.0/24", NOW + 300), ban("203.0.113.8", NOW + 900)], NOW)
    assert texts(bans.entries()) == ["203.0.113.0/24", "203.0.113.8"]
    assert [entry.single for entry in bans.entries()] == [False, True]
