"""Challenge rules in Policy.decide: they challenge only requests their gate does not pass (no clearance,
not exempt, not a verified crawler), a passed request goes on to the later rules, and a log-only
challenge rule only records its name. The gate is a stand-in here; the real one is tested with it."""

from __future__ import annotations

from typing import Any

from test_policy_engine import limit, rule
from test_policy_match import view

from shieldwall.config.load import parse_config
from shieldwall.policy.compile import compile_policy
from shieldwall.policy.decision import ALLOW, Action, Decision, RequestView
from shieldwall.policy.engine import Policy

CLEARED = (b"cookie", b"cleared=yes")


class CookieGate:
    """Passes requests carrying the CLEARED header; counts how often it was asked."""

    def __init__(self) -> None:
        self.asked = 0

    def passes(self, view: RequestView) -> bool:
        self.asked += 1
        return CLEARED in view.headers


def gated(*rules: dict[str, Any], gate: CookieGate) -> Policy:
    return compile_policy(parse_config({"rules": list(rules)}).rules, gate=gate)


def test_a_challenge_rule_challenges_a_request_its_gate_does_not_pass() -> None:
    gate = CookieGate()
    rules = gated(rule("pow", "challenge", path_prefix="/donate"), gate=gate)
    decision = rules.decide(view(b"/donate/now"), 0.0)
    assert decision == Decision(Action.CHALLENGE, "pow")
    assert decision.status == 403


def test_a_passed_request_goes_on_to_the_later_rules() -> None:
    gate = CookieGate()
    rules = gated(
        rule("pow", "challenge", path_prefix="/donate"),
        rule("no-admin", "block", path_prefix="/donate/admin"),
        gate=gate,
    )
    assert rules.decide(view(b"/donate", headers=(CLEARED,)), 0.0) is ALLOW
    blocked = rules.decide(view(b"/donate/admin", headers=(CLEARED,)), 0.0)
    assert blocked == Decision(Action.BLOCK, "no-admin")


def test_the_gate_is_asked_only_when_a_challenge_rule_applies() -> None:
    gate = CookieGate()
    rules = gated(rule("pow", "challenge", path_prefix="/donate"), gate=gate)
    assert rules.decide(view(b"/news"), 0.0) is ALLOW
    assert gate.asked == 0
    rules.decide(view(b"/donate"), 0.0)
    assert gate.asked == 1


def test_a_limit_before_a_challenge_still_counts_cleared_requests() -> None:
    gate = CookieGate()
    rules = gated(limit("per-ip", 1.0, 2), rule("pow", "challenge"), gate=gate)
    answers = [rules.decide(view(headers=(CLEARED,)), 0.0).action for _ in range(3)]
    assert answers == [Action.ALLOW, Action.ALLOW, Action.LIMIT]


def test_a_log_only_challenge_records_instead_of_challenging() -> None:
    gate = CookieGate()
    rules = gated(rule("try-pow", "challenge", log_only=True), gate=gate)
    assert rules.decide(view(), 0.0) == Decision(Action.ALLOW, logged=("try-pow",))
    assert rules.decide(view(headers=(CLEARED,)), 0.0) is ALLOW


def test_without_a_gate_every_challenge_rule_challenges() -> None:
    rules = compile_policy(parse_config({"rules": [rule("pow", "challenge")]}).rules)
    assert rules.decide(view(headers=(CLEARED,)), 0.0).action is Action.CHALLENGE
