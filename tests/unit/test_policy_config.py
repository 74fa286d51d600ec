"""`[[rules]]` in the configuration: each mistake is reported with its key path and the exact words an
operator reads, and every TOML example in docs/policy.md loads, compiles and does what the doc says."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from test_policy_match import view

from shieldwall.config import ConfigError, parse_config
from shieldwall.policy.compile import compile_policy
from shieldwall.policy.decision import ALLOW, Action, Decision

POLICY_DOC = Path(__file__).resolve().parents[2] / "docs" / "policy.md"


def problems(*rules: Any) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config({"rules": list(rules)})
    return caught.value.problems


def block(**match: Any) -> dict[str, Any]:
    return {"name": "r", "action": "block", "match": match}


def test_a_bad_path_regex() -> None:
    assert problems(block(path_regex="(unclosed")) == [
        "rules[0].match.path_regex: not a valid regular expression (missing ), unterminated subpattern "
        'at position 0) (got "(unclosed"); see Python\'s re syntax'
    ]


def test_a_bad_header_regex_names_the_header() -> None:
    assert problems(block(headers={"user-agent": "[a-"})) == [
        "rules[0].match.headers.user-agent: not a valid regular expression (unterminated character set "
        'at position 0) (got "[a-"); see Python\'s re syntax'
    ]


def test_bad_cidrs_are_each_reported_at_their_index() -> None:
    assert problems(block(clients=["10.0.0.0/8", "10.0.0.0/33", "office"])) == [
        f'rules[0].match.clients[{i}]: not a CIDR (got "{value}"); '
        "write it like 10.0.0.0/8, 192.0.2.7 or 2001:db8::/32"
        for i, value in ((1, "10.0.0.0/33"), (2, "office"))
    ]


def test_a_bad_rule_name() -> None:
    assert problems({"name": "Block WP", "action": "block"}) == [
        "rules[0].name: not a rule name (got \"Block WP\"); use lower-case letters, digits, '-' and '_' "
        "(at most 63)"
    ]


def test_a_missing_name() -> None:
    assert problems({"action": "block"}) == ["rules[0].name: required key is missing; add it to [[rules]]"]


def test_a_limit_rule_needs_its_limit_table_and_only_it_has_one() -> None:
    limit = {"rate": 1.0, "burst": 5}
    assert problems({"name": "a", "action": "limit"}, {"name": "b", "action": "block", "limit": limit}) == [
        "rules[0]: a rule with action = 'limit' needs a [rules.limit] table (rate, burst)",
        "rules[1]: [rules.limit] is only for action = 'limit'",
    ]


def test_duplicate_names_name_both_rules() -> None:
    assert problems(
        {"name": "wp", "action": "block"},
        {"name": "api", "action": "allow"},
        {"name": "wp", "action": "allow"},
    ) == ["rules: rules[0] and rules[2] are both named 'wp'; names must be unique"]


def test_bad_limit_values() -> None:
    assert problems(
        {"name": "a", "action": "limit", "limit": {"rate": 0, "burst": 1.5, "per": "cookie"}}
    ) == [
        "rules[0].limit.rate: must be greater than 0 (got 0)",
        "rules[0].limit.burst: must be a whole number (got 1.5)",
        "rules[0].limit.per: must be ip, prefix, prefix48, route, fingerprint, header:NAME (lower-case) "
        'or cookie:NAME (got "cookie")',
    ]


def test_unknown_action_and_misspelt_keys() -> None:
    assert problems({"name": "a", "action": "deny", "match": {"paht": "/x"}}) == [
        'rules[0].action: must be "allow", "block", "limit", "challenge", "tarpit" or "concurrency" '
        '(got "deny")',
        "rules[0].match.paht: unknown key; did you mean 'path'?",
    ]


def test_rules_must_be_an_array_of_tables() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"rules": {"name": "a", "action": "block"}})
    assert caught.value.problems == ["rules: must be an array of tables; start each one with [[rules]]"]


# --- docs/policy.md: every example is valid, and the worked example behaves as described -------------


def doc_snippets() -> list[str]:
    return re.findall(r"```toml\n(.*?)```", POLICY_DOC.read_text(encoding="utf-8"), re.DOTALL)


def test_every_toml_example_in_the_policy_doc_loads_and_compiles() -> None:
    snippets = doc_snippets()
    assert len(snippets) >= 2
    for snippet in snippets:
        compile_policy(parse_config(tomllib.loads(snippet)).rules)


def test_the_worked_example_for_a_campaign_site() -> None:
    [example] = [s for s in doc_snippets() if "campaign" in s]
    campaign = compile_policy(parse_config(tomllib.loads(example)).rules)

    def decide(path: bytes, now: float = 0.0, **request: Any) -> Decision:
        return campaign.decide(view(path, host=b"www.campaign.example", **request), now)

    assert decide(b"/wp-login.php") == Decision(Action.BLOCK, "no-wordpress")
    assert decide(b"/wp-login.php", ip="192.0.2.10") == Decision(Action.ALLOW, "office")
    assert decide(b"/xmlrpc.php") == Decision(Action.ALLOW, logged=("try-block-xmlrpc",))

    donations = [decide(b"/donate", method=b"POST", ip="203.0.113.9") for _ in range(6)]
    assert [d.action for d in donations] == [Action.ALLOW] * 5 + [Action.LIMIT]
    assert donations[-1].rule == "donate-per-ip"
    assert decide(b"/donate", method=b"POST", ip="203.0.113.10") is ALLOW  # another donor is not affected
    assert decide(b"/donate", ip="203.0.113.9") is ALLOW  # the form page itself is not limited

    api_key = ((b"x-api-key", b"press-office-key"),)
    statuses = [decide(b"/api/events", headers=api_key).action for _ in range(31)]
    assert statuses == [Action.ALLOW] * 30 + [Action.LIMIT]
    assert decide(b"/api/events", 1.0, headers=api_key).action is Action.ALLOW  # 1 request/s refills
