"""Concurrency rules (requests being served at once, per bucket) and tarpit rules (a refusal held back)
in Policy.decide, and their configuration."""

from __future__ import annotations

from fake_transport import FakeTransport
from test_policy_config import problems
from test_policy_engine import rule
from test_policy_match import policy, view

from shieldwall.policy.decision import ALLOW, Action


def concurrency(name: str, most: int, per: str = "route", **match: object) -> dict[str, object]:
    return {"name": name, "action": "concurrency", "match": match, "concurrency": {"max": most, "per": per}}


def test_a_concurrency_rule_holds_a_slot_until_it_is_given_back() -> None:
    rules = policy(concurrency("search", 2, path="/search"))
    first, second = (rules.decide(view(b"/search"), 0.0) for _ in range(2))
    assert first.action is Action.ALLOW and len(first.held) == 1
    assert second.action is Action.ALLOW
    third = rules.decide(view(b"/search"), 0.0)
    assert (third.action, third.rule, third.retry_after) == (Action.LIMIT, "search", 1)
    counts, key = first.held[0]
    counts.release(key)  # what the data plane does when the first request is done
    assert rules.decide(view(b"/search"), 0.0).action is Action.ALLOW
    assert rules.decide(view(b"/news"), 0.0) is ALLOW, "other routes hold nothing"


def test_per_ip_slots_are_counted_per_address() -> None:
    rules = policy(concurrency("per-ip", 1, per="ip"))
    assert rules.decide(view(ip="198.51.100.1"), 0.0).action is Action.ALLOW
    assert rules.decide(view(ip="198.51.100.2"), 0.0).action is Action.ALLOW
    assert rules.decide(view(ip="198.51.100.1"), 0.0).action is Action.LIMIT


def test_a_request_refused_by_a_later_rule_gives_its_slots_back_at_once() -> None:
    rules = policy(concurrency("all", 1), rule("no-admin", "block", path_prefix="/admin"))
    assert rules.decide(view(b"/admin"), 0.0).action is Action.BLOCK
    held = rules.decide(view(b"/"), 0.0)
    assert held.action is Action.ALLOW and held.held, "the blocked request did not keep the slot"


def test_a_log_only_concurrency_rule_counts_but_never_refuses() -> None:
    rules = policy({**concurrency("try", 1), "log_only": True})
    assert rules.decide(view(), 0.0).action is Action.ALLOW
    over = rules.decide(view(), 0.0)
    assert over.action is Action.ALLOW and over.logged == ("try",)


def test_a_tarpit_rule_answers_403_after_its_delay() -> None:
    rules = policy({"name": "slow-down", "action": "tarpit", "delay": 20.0, "match": {"path": "/xmlrpc.php"}})
    decision = rules.decide(view(b"/xmlrpc.php"), 0.0)
    assert (decision.action, decision.status, decision.delay) == (Action.TARPIT, 403, 20.0)


def test_bad_concurrency_and_tarpit_rules_are_refused_with_a_reason() -> None:
    assert problems({"name": "c", "action": "concurrency"}) == [
        "rules[0]: a rule with action = 'concurrency' needs a [rules.concurrency] table (max, per), "
        "and only such a rule may have one"
    ]
    assert problems(concurrency("c", 1, per="bogus"))[0].startswith("rules[0].concurrency.per: must be ip,")
    assert problems({"name": "b", "action": "block", "delay": 5.0}) == [
        "rules[0]: delay is only for action = 'tarpit'"
    ]


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def test_in_the_data_plane_a_slot_is_given_back_when_the_response_is_done(make_rig) -> None:
    rig = make_rig({"rules": [concurrency("search", 1, path="/search")]})
    rig.client.data_received(b"GET /search HTTP/1.1\r\nHost: h\r\n\r\n")
    rig.up.take()
    other = FakeTransport(("198.51.100.4", 40000))
    rig.connect(other).data_received(b"GET /search HTTP/1.1\r\nHost: h\r\n\r\n")
    assert other.take().startswith(b"HTTP/1.1 429 "), "the one slot is taken"
    rig.origin_says(OK)
    rig.client_t.take()
    rig.client.data_received(b"GET /search HTTP/1.1\r\nHost: h\r\n\r\n")
    assert rig.up.take().startswith(b"GET /search "), "given back when the response was done"


def test_in_the_data_plane_a_tarpit_answers_only_after_its_delay(make_rig) -> None:
    tarpit = {"name": "slow", "action": "tarpit", "delay": 5.0, "match": {"path": "/xmlrpc.php"}}
    rig = make_rig({"rules": [tarpit]})
    rig.client.data_received(b"GET /xmlrpc.php HTTP/1.1\r\nHost: h\r\n\r\n")
    rig.server._sweep()
    assert rig.client_t.take() == b"", "nothing yet"
    rig.clock.advance(5.5)
    rig.server._sweep()
    assert rig.client_t.take().startswith(b"HTTP/1.1 403 ")
    assert not rig.upstreams and not rig.server.tarpitted
