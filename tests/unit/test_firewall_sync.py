"""firewall/nft_json.py and firewall/sync.py: the libnftables JSON for the sets, and the smallest
transaction from what the kernel holds to what it must. tests/integration/test_firewall_netns.py
feeds the same JSON to a real nft."""

from __future__ import annotations

import json
from typing import Any

from shieldwall.firewall import nft_json
from shieldwall.firewall.entries import BanSet, ban_set
from shieldwall.firewall.sync import KernelSets, Transaction
from shieldwall.limiter.bans import Ban

NOW = 1_700_000_000.0


def bans(*targets: tuple[str, float | None], now: float = NOW) -> BanSet:
    return ban_set([Ban(target, until, "t", "manual", 0, NOW - 10) for target, until in targets], now)


def commands_of(kind: str, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The `kind` ("add", "delete", "flush") commands on set elements, as {"set": ..., "elem": [...]}."""
    found = []
    for command in commands:
        body = command.get(kind, {})
        if "element" in body:
            found.append({"set": body["element"]["name"], "elem": body["element"]["elem"]})
        elif kind == "flush" and "set" in body:
            found.append({"set": body["set"]["name"]})
    return found


def test_structure_declares_the_table_the_sets_and_a_prerouting_chain_dropping_both() -> None:
    commands = nft_json.structure("shieldwall")
    assert commands[0] == {"add": {"table": {"family": "inet", "name": "shieldwall"}}}
    sets = [c["add"]["set"] for c in commands if "set" in c.get("add", {})]
    assert [(s["name"], s["type"], s["flags"]) for s in sets] == [
        ("banned4", "ipv4_addr", ["timeout"]),
        ("banned4_nets", "ipv4_addr", ["interval", "timeout"]),
        ("banned6", "ipv6_addr", ["timeout"]),
        ("banned6_nets", "ipv6_addr", ["interval", "timeout"]),
    ]
    [chain] = [c["add"]["chain"] for c in commands if "chain" in c.get("add", {})]
    assert (chain["hook"], chain["prio"], chain["policy"], chain["type"]) == (
        "prerouting",
        -300,
        "accept",
        "filter",
    )
    assert {"flush": {"chain": {"family": "inet", "table": "shieldwall", "name": "prerouting"}}} in commands
    rules = [c["add"]["rule"]["expr"] for c in commands if "rule" in c.get("add", {})]
    assert rules == [
        [
            {
                "match": {
                    "op": "==",
                    "left": {"payload": {"protocol": proto, "field": "saddr"}},
                    "right": f"@{name}",
                }
            },
            {"counter": None},
            {"drop": None},
        ]
        for proto, name in (
            ("ip", "banned4"),
            ("ip", "banned4_nets"),
            ("ip6", "banned6"),
            ("ip6", "banned6_nets"),
        )
    ]


def test_a_full_sync_flushes_both_sets_and_adds_every_element_with_its_timeout() -> None:
    wanted = bans(("203.0.113.7", NOW + 599.5), ("198.51.100.0/24", None), ("2001:db8:1:2::/64", NOW + 60))
    commands = nft_json.full("shieldwall", wanted, NOW)
    assert commands_of("flush", commands) == [
        {"set": name} for name in ("banned4", "banned4_nets", "banned6", "banned6_nets")
    ]
    assert commands_of("add", commands) == [
        {"set": "banned4", "elem": [{"elem": {"val": "203.0.113.7", "timeout": 600}}]},
        {"set": "banned4_nets", "elem": [{"prefix": {"addr": "198.51.100.0", "len": 24}}]},
        {
            "set": "banned6_nets",
            "elem": [{"elem": {"val": {"prefix": {"addr": "2001:db8:1:2::", "len": 64}}, "timeout": 60}}],
        },
    ]
    document = json.loads(nft_json.document(commands))
    assert document == {"nftables": commands}


def plan(kernel: KernelSets, wanted: BanSet, now: float = NOW) -> Transaction:
    transaction = kernel.plan(wanted, now)
    assert transaction is not None
    return transaction


def test_the_first_plan_is_full_then_only_changes_go_out() -> None:
    kernel = KernelSets("shieldwall")
    first = bans(("203.0.113.7", NOW + 600), ("203.0.113.8", NOW + 600))
    transaction = plan(kernel, first)
    assert transaction.full and transaction.added == 2
    kernel.applied(transaction, NOW)
    assert kernel.elements(NOW) == (2, 0)
    assert kernel.plan(first, NOW + 1) is None  # nothing changed

    # one new ban, one lifted, one extended (deleted and added again: a timeout cannot be changed in place)
    second = bans(("203.0.113.7", NOW + 900), ("2001:db8::1", None), now=NOW + 1)
    transaction = plan(kernel, second, NOW + 1)
    assert not transaction.full and (transaction.added, transaction.removed) == (2, 2)
    assert commands_of("delete", transaction.commands) == [
        {"set": "banned4", "elem": ["203.0.113.7", "203.0.113.8"]}
    ]
    assert commands_of("add", transaction.commands) == [
        {"set": "banned4", "elem": [{"elem": {"val": "203.0.113.7", "timeout": 899}}]},
        {"set": "banned6", "elem": ["2001:db8::1"]},
    ]
    assert commands_of("flush", transaction.commands) == []  # the sets keep what did not change
    kernel.applied(transaction, NOW + 1)
    assert kernel.elements(NOW + 1) == (1, 1)


def test_elements_that_expire_need_no_command() -> None:
    kernel = KernelSets("shieldwall")
    kernel.applied(plan(kernel, bans(("203.0.113.7", NOW + 10), ("203.0.113.8", NOW + 600))), NOW)
    later = NOW + 11
    assert kernel.plan(bans(("203.0.113.8", NOW + 600), now=later), later) is None
    assert kernel.elements(later) == (1, 0)


def test_a_prefix_ban_goes_to_the_prefix_set_and_leaves_the_addresses_in_it() -> None:
    kernel = KernelSets("shieldwall")
    kernel.applied(plan(kernel, bans(("203.0.113.7", NOW + 600))), NOW)
    transaction = plan(kernel, bans(("203.0.113.7", NOW + 600), ("203.0.113.0/24", NOW + 900)))
    assert commands_of("delete", transaction.commands) == []
    assert commands_of("add", transaction.commands) == [
        {
            "set": "banned4_nets",
            "elem": [{"elem": {"val": {"prefix": {"addr": "203.0.113.0", "len": 24}}, "timeout": 900}}],
        }
    ]


def test_a_full_rewrite_when_an_element_to_remove_may_expire_first_after_a_failure_and_periodically() -> None:
    kernel = KernelSets("shieldwall", full_every=60.0)
    kernel.applied(plan(kernel, bans(("203.0.113.7", NOW + 1.5), ("203.0.113.8", NOW + 600))), NOW)
    assert plan(kernel, bans(("203.0.113.8", NOW + 600))).full  # .7 lifted, but it may be gone by then
    assert not plan(kernel, bans(("203.0.113.7", NOW + 1.5), ("203.0.113.9", NOW + 600))).full
    kernel.forget()
    assert plan(kernel, bans(("203.0.113.8", NOW + 600))).full
    kernel.applied(plan(kernel, bans(("203.0.113.8", NOW + 600))), NOW)
    assert not kernel.stale(NOW + 59) and kernel.stale(NOW + 60)
    assert plan(kernel, bans(("203.0.113.8", NOW + 600), now=NOW + 60), NOW + 60).full
