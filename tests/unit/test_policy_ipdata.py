"""Rules on the client's ASN and country (`asns`, `countries`) against the iptoasn sample table: both
address families, addresses the data does not know, the order with the other conditions (the lookup
runs only when a rule needs it, once per request), log-only and limit rules; the configuration's checks
on those conditions and on `[client_data]`; and opening the data once per process."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_policy_match import view

from shieldwall.config import ConfigError, parse_config
from shieldwall.config.client_data_schema import ClientData, open_client_data
from shieldwall.net.ipdata import DataFileError, IpData, IpInfo
from shieldwall.policy.compile import compile_policy
from shieldwall.policy.decision import ALLOW, Action, Decision
from shieldwall.policy.engine import Policy

SAMPLE = Path(__file__).parent.parent / "fixtures" / "ipdata" / "ip2asn-sample.tsv"
DATA = IpData.load(SAMPLE)
CLIENT_DATA = {"ipdata": [str(SAMPLE)]}


class CountingLookup:
    """The sample table, counting the addresses it is asked about."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def lookup(self, ip: str) -> IpInfo | None:
        self.asked.append(ip)
        return DATA.lookup(ip)


def policy(*rules: dict[str, Any], ipdata: Any = DATA) -> Policy:
    """Rules as TOML would give them (with a [client_data] table, as the schema requires)."""
    settings = parse_config({"client_data": CLIENT_DATA, "rules": list(rules)})
    return compile_policy(settings.rules, ipdata=ipdata)


def rule(name: str, action: str = "block", log_only: bool = False, **match: Any) -> dict[str, Any]:
    return {"name": name, "action": action, "log_only": log_only, "match": match}


def decide(policy: Policy, ip: str, path: bytes = b"/") -> Decision:
    return policy.decide(view(path, ip=ip), 0.0)


# --- what the conditions match ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("match", "ip", "applies"),
    [
        ({"asns": [15169]}, "8.8.8.8", True),  # GOOGLE, IPv4
        ({"asns": [15169]}, "66.249.95.255", True),  # the last address of its range
        ({"asns": [15169]}, "66.249.96.0", False),  # the first one past it: in no range
        ({"asns": [15169]}, "2001:4860::8888", True),  # IPv6
        ({"asns": [15169]}, "::ffff:8.8.8.8", True),  # IPv4-mapped: the IPv4 client it is
        ({"asns": [13335, 38803]}, "1.0.8.1", True),  # any of the listed ASNs
        ({"asns": [13335]}, "8.8.8.8", False),
        ({"asns": [15169]}, "1.0.2.1", False),  # unrouted space: unknown
        ({"asns": [15169]}, "192.0.2.1", False),  # in no range at all: unknown
        ({"asns": [15169]}, "2001:db8::1:0", False),  # an IPv6 gap inside one /64
        ({"countries": ["AU"]}, "1.0.4.1", True),
        ({"countries": ["US", "NL"]}, "2001:db8::5", True),  # NL
        ({"countries": ["JP"]}, "2001:db8:0:1::1", True),
        ({"countries": ["DE"]}, "255.255.255.255", True),  # written "de" in the file
        ({"countries": ["US"]}, "1.0.4.1", False),
        ({"countries": ["US"]}, "192.0.2.1", False),  # unknown address
        ({"asns": [64500]}, "203.0.113.5", True),  # routed, but the file gives no country...
        ({"countries": ["US", "EU"]}, "203.0.113.5", False),  # ...so no country condition holds
        ({"asns": [15169], "countries": ["US"]}, "8.8.8.8", True),  # both hold
        ({"asns": [15169], "countries": ["DE"]}, "8.8.8.8", False),  # AND, not OR
        ({"asns": [13335], "countries": ["US"]}, "8.8.8.8", False),
    ],
)
def test_asns_and_countries(match: dict[str, Any], ip: str, applies: bool) -> None:
    decision = decide(policy(rule("r", **match)), ip)
    assert decision.action is (Action.BLOCK if applies else Action.ALLOW)


@given(st.ip_addresses())
def test_an_asns_rule_applies_exactly_when_the_data_gives_one_of_its_asns(address: Any) -> None:
    asns = {13335, 15169, 64501, 64511}
    blocking = policy(rule("r", asns=sorted(asns)))
    info = DATA.lookup(str(address))
    expected = info is not None and info.asn in asns
    assert (decide(blocking, str(address)).action is Action.BLOCK) is expected


@given(st.ip_addresses(v=4) | st.ip_addresses(v=6, network=ipaddress.ip_network("2001:db8::/45")))
def test_a_countries_rule_applies_exactly_when_the_data_gives_one_of_its_countries(address: Any) -> None:
    blocking = policy(rule("r", countries=["US", "FR", "JP"]))
    info = DATA.lookup(str(address))
    expected = info is not None and info.country in {"US", "FR", "JP"}
    assert (decide(blocking, str(address)).action is Action.BLOCK) is expected


def test_without_data_no_asns_or_countries_condition_holds() -> None:
    """A Policy compiled without a lookup knows nothing about addresses (the schema refuses such a
    configuration; this is what a caller that skips it gets)."""
    blind = policy(rule("a", asns=[15169]), rule("c", countries=["US"]), ipdata=None)
    assert decide(blind, "8.8.8.8") is ALLOW


# --- the lookup: only when a rule needs it, once per request, after the cheaper conditions --------------


def test_the_lookup_runs_once_per_request_however_many_rules_need_it() -> None:
    counting = CountingLookup()
    rules = policy(
        rule("us", countries=["US"], path="/admin"),
        rule("cloudflare", asns=[13335]),
        rule("au", countries=["AU"]),
        rule("google", asns=[15169]),
        ipdata=counting,
    )
    assert decide(rules, "8.8.8.8") == Decision(Action.BLOCK, "google")
    assert counting.asked == ["8.8.8.8"]
    assert decide(rules, "192.0.2.1") is ALLOW
    assert counting.asked == ["8.8.8.8", "192.0.2.1"]  # an unknown answer is not asked again either


def test_the_lookup_waits_for_the_cheaper_conditions() -> None:
    counting = CountingLookup()
    rules = policy(
        rule("office", "allow", clients=["192.0.2.0/24"]),
        rule("admin-from-abroad", path_prefix="/admin", asns=[15169], countries=["US"]),
        rule("wp", methods=["POST"], path="/wp-login.php", countries=["AU"]),
        ipdata=counting,
    )
    assert decide(rules, "8.8.8.8", b"/") is ALLOW  # no rule's other conditions hold: nothing asked
    assert decide(rules, "192.0.2.7", b"/admin/") == Decision(Action.ALLOW, "office")  # stops first
    assert counting.asked == []
    assert decide(rules, "8.8.8.8", b"/admin/") == Decision(Action.BLOCK, "admin-from-abroad")
    assert counting.asked == ["8.8.8.8"]


def test_a_request_the_rule_does_not_cover_gets_the_shared_allow_and_a_block_its_precomputed_answer() -> None:
    """No allocation for the answer: the module's ALLOW, or the rule's Decision made at compile time."""
    rules = policy(rule("google", asns=[15169]))
    assert decide(rules, "1.0.0.1") is ALLOW
    assert decide(rules, "8.8.8.8") is rules.rules[0].decision


# --- with the other actions ------------------------------------------------------------------------


def test_an_allow_rule_on_a_country_exempts_it_from_the_later_rules() -> None:
    rules = policy(rule("home", "allow", countries=["AU"]), rule("everyone", path_prefix="/"))
    assert decide(rules, "1.0.4.1") == Decision(Action.ALLOW, "home")
    assert decide(rules, "8.8.8.8") == Decision(Action.BLOCK, "everyone")


def test_a_log_only_rule_on_an_asn_logs_and_lets_the_request_go_on() -> None:
    rules = policy(rule("try-google", log_only=True, asns=[15169]), rule("admin", path="/admin"))
    assert decide(rules, "8.8.8.8") == Decision(Action.ALLOW, logged=("try-google",))
    assert decide(rules, "8.8.8.8", b"/admin") == Decision(Action.BLOCK, "admin", logged=("try-google",))
    assert decide(rules, "1.0.0.1") is ALLOW


def test_a_limit_rule_on_a_country_counts_only_that_countrys_clients() -> None:
    limit = {
        "name": "au",
        "action": "limit",
        "match": {"countries": ["AU"]},
        "limit": {"rate": 0.001, "burst": 2, "per": "route"},
    }
    rules = policy(limit)
    assert [decide(rules, "8.8.8.8").action for _ in range(5)] == [Action.ALLOW] * 5  # not counted
    au = [decide(rules, ip).action for ip in ("1.0.4.1", "1.0.8.1", "1.0.15.255")]
    assert au == [Action.ALLOW, Action.ALLOW, Action.LIMIT]  # one bucket for every AU client


# --- the configuration -----------------------------------------------------------------------------


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data)
    return caught.value.problems


def test_bad_asns_and_country_codes_are_each_reported_at_their_index() -> None:
    match = {"asns": [0, 15169, 4294967296, "AS13335"], "countries": ["de", "XX", "GER", "US", 49]}
    assert problems({"client_data": CLIENT_DATA, "rules": [rule("r", **match)]}) == [
        "rules[0].match.asns[0]: must be at least 1 (got 0)",
        "rules[0].match.asns[2]: must be at most 4294967295 (got 4294967296)",
        'rules[0].match.asns[3]: must be a whole number (got "AS13335"); write it without quotes',
        'rules[0].match.countries[0]: country codes are upper-case (got "de"); write "DE"',
        'rules[0].match.countries[1]: not an ISO 3166-1 alpha-2 country code (got "XX"); write two '
        'letters, e.g. "DE" or "US"',
        'rules[0].match.countries[2]: not an ISO 3166-1 alpha-2 country code (got "GER"); write two '
        'letters, e.g. "DE" or "US"',
        'rules[0].match.countries[4]: must be a string (got 49); put it in double quotes, like "value"',
    ]


def test_asns_or_countries_without_a_data_file_is_an_error_naming_the_rule() -> None:
    rules = [rule("fine", path="/x"), rule("by-origin", asns=[15169], countries=["US"])]
    expected = (
        "rules: rules[1] ('by-origin') matches on asns and countries, which needs a file of ASN and "
        "country data; name one with ipdata = [...] in [client_data] (docs/configuration.md#client_data), "
        "or remove the condition"
    )
    assert problems({"rules": rules}) == [expected]
    assert problems({"client_data": {"ipdata": []}, "rules": rules}) == [expected]
    assert parse_config({"client_data": CLIENT_DATA, "rules": rules}).rules[1].match.asns == (15169,)


def test_the_client_data_section() -> None:
    assert ClientData() == ClientData(ipdata=(), lookup_cache=4096)
    assert problems({"client_data": {"ipdata": "ip2asn.tsv", "lookup_cache": 0, "geoip": []}}) == [
        'client_data.ipdata: must be an array (got "ip2asn.tsv"); write it in brackets, like ["a", "b"]',
        "client_data.lookup_cache: must be greater than 0 (got 0)",
        "client_data.geoip: unknown key; the keys of [client_data] are: ipdata, lookup_cache",
    ]


# --- opening the files, once per process ------------------------------------------------------------


def test_no_files_no_lookup() -> None:
    assert open_client_data(ClientData()) is None


def test_the_same_files_give_the_same_lookup_and_a_replaced_file_is_read_again(tmp_path: Path) -> None:
    table = tmp_path / "ip2asn.tsv"
    table.write_bytes(SAMPLE.read_bytes())
    section = ClientData(ipdata=(table,), lookup_cache=16)
    first = open_client_data(section)
    assert first is not None and first.lookup("8.8.8.8") == IpInfo(15169, "US", "GOOGLE")
    assert open_client_data(ClientData(ipdata=(table,), lookup_cache=16)) is first  # what a worker finds

    assert open_client_data(ClientData(ipdata=(table,), lookup_cache=32)) is not first
    table.write_text("8.8.8.0\t8.8.8.255\t64496\tNL\tREPLACED\n")
    os.utime(table, ns=(1, 1))  # a different size and time, as an operator's download would have
    replaced = open_client_data(section)
    assert replaced is not None and replaced is not first
    assert replaced.lookup("8.8.8.8") == IpInfo(64496, "NL", "REPLACED")


def test_an_unusable_file_raises_with_its_name_and_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.tsv"
    broken.write_text("1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET\n1.0.4.0\t1.0.7.255\tAS38803\tAU\tX\n")
    with pytest.raises(DataFileError, match=r"broken\.tsv:2: not an AS number: 'AS38803'"):
        open_client_data(ClientData(ipdata=(SAMPLE, broken)))
    with pytest.raises(DataFileError, match=r"missing\.tsv: cannot read"):
        open_client_data(ClientData(ipdata=(tmp_path / "missing.tsv",)))
