"""Policy.decide: rule order, allow/block/limit, log-only rules, limit keys, retry_after, and the
property that a limit rule never admits more than burst + rate x window per key. Time is a float the
test moves; nothing sleeps."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_policy_match import policy, view

from shieldwall.config import ConfigError
from shieldwall.policy.decision import ALLOW, Action, Decision
from shieldwall.policy.engine import Policy

EPS = 1e-9
OFFICE = "192.0.2.0/24"


def rule(name: str, action: str, log_only: bool = False, **match: Any) -> dict[str, Any]:
    return {"name": name, "action": action, "log_only": log_only, "match": match}


def limit(name: str, rate: float, burst: int, per: str = "ip", log_only: bool = False, **match: Any) -> dict:
    return {
        "name": name,
        "action": "limit",
        "log_only": log_only,
        "match": match,
        "limit": {"rate": rate, "burst": burst, "per": per},
    }


def actions(policy: Policy, count: int, now: float = 0.0, **request: Any) -> list[Action]:
    return [policy.decide(view(**request), now).action for _ in range(count)]


# --- the empty policy, and what each action answers --------------------------------------------------


def test_an_empty_policy_says_so_and_allows() -> None:
    empty = policy()
    assert empty.empty
    assert empty.decide(view(), 0.0) is ALLOW
    assert not policy(rule("r", "block", path="/x")).empty


def test_no_rule_applies_means_the_shared_allow() -> None:
    """The common case allocates no Decision: the module's ALLOW object comes back."""
    rules = policy(rule("a", "block", path="/wp-login.php"), limit("b", 1, 1, methods=["POST"]))
    assert rules.decide(view(b"/"), 0.0) is ALLOW


def test_block_is_403_and_names_its_rule() -> None:
    decision = policy(rule("wp", "block", path="/wp-login.php")).decide(view(b"/wp-login.php"), 0.0)
    assert decision == Decision(Action.BLOCK, "wp")
    assert decision.status == 403


def test_an_allow_rule_answers_allow_with_its_name() -> None:
    decision = policy(rule("office", "allow", clients=[OFFICE])).decide(view(ip="192.0.2.1"), 0.0)
    assert decision == Decision(Action.ALLOW, "office")
    assert decision.status == 0


# --- order ---------------------------------------------------------------------------------------


def test_the_first_rule_that_applies_decides() -> None:
    rules = policy(rule("first", "block", path_prefix="/admin"), rule("second", "block", path="/admin/x"))
    assert rules.decide(view(b"/admin/x"), 0.0).rule == "first"


def test_allow_before_block_is_an_allowlist() -> None:
    rules = policy(rule("office", "allow", clients=[OFFICE]), rule("no-admin", "block", path_prefix="/admin"))
    assert rules.decide(view(b"/admin/", ip="192.0.2.77"), 0.0) == Decision(Action.ALLOW, "office")
    assert rules.decide(view(b"/admin/", ip="198.51.100.7"), 0.0) == Decision(Action.BLOCK, "no-admin")


def test_block_before_allow_wins() -> None:
    rules = policy(rule("no-admin", "block", path_prefix="/admin"), rule("office", "allow", clients=[OFFICE]))
    assert rules.decide(view(b"/admin/", ip="192.0.2.77"), 0.0).action is Action.BLOCK


def test_an_allowed_request_is_not_counted_by_later_limits() -> None:
    rules = policy(rule("office", "allow", clients=[OFFICE]), limit("all", rate=1, burst=2))
    assert actions(rules, 50, ip="192.0.2.1") == [Action.ALLOW] * 50
    assert actions(rules, 3) == [Action.ALLOW, Action.ALLOW, Action.LIMIT]


# --- limits ----------------------------------------------------------------------------------------


def test_a_limit_admits_its_burst_then_answers_429_with_retry_after() -> None:
    rules = policy(limit("donate", rate=0.1, burst=3, methods=["POST"], path="/donate"))
    assert actions(rules, 3, path=b"/donate", method=b"POST") == [Action.ALLOW] * 3
    decision = rules.decide(view(b"/donate", method=b"POST"), 0.0)
    assert decision == Decision(Action.LIMIT, "donate", retry_after=10)
    assert decision.status == 429
    assert rules.decide(view(b"/donate"), 0.0) is ALLOW  # a GET does not match the rule
    assert rules.decide(view(b"/donate", method=b"POST"), 10.0).action is Action.ALLOW


@pytest.mark.parametrize(
    ("rate", "burst", "times", "retry_after"),
    [
        (2.0, 1, [0.0], 1),  # 0.5 s to wait: rounded up, never 0
        (0.5, 1, [0.0], 2),
        (0.5, 1, [0.0, 1.5], 1),  # 0.5 s left
        (1 / 60, 2, [0.0, 0.0], 60),  # 1 per minute
        (1 / 60, 2, [0.0, 0.0, 30.0], 30),
    ],
)
def test_retry_after_is_the_wait_in_whole_seconds_rounded_up(
    rate: float, burst: int, times: list[float], retry_after: int
) -> None:
    rules = policy(limit("l", rate, burst))
    for now in times:
        rules.decide(view(), now)
    decision = rules.decide(view(), times[-1])
    assert (decision.action, decision.retry_after) == (Action.LIMIT, retry_after)


def test_a_request_under_a_limit_goes_on_to_the_next_rule() -> None:
    rules = policy(limit("per-ip", rate=10, burst=100), rule("wp", "block", path="/wp-login.php"))
    assert rules.decide(view(b"/wp-login.php"), 0.0) == Decision(Action.BLOCK, "wp")


def test_several_limits_count_the_same_request() -> None:
    """Every limit rule a request reaches counts it; the first one over its limit answers."""
    rules = policy(limit("per-ip", rate=1, burst=4), limit("site", rate=1, burst=6, per="route"))
    assert actions(rules, 4, ip="203.0.113.1") == [Action.ALLOW] * 4  # both count: site has 2 left
    assert rules.decide(view(ip="203.0.113.1"), 0.0).rule == "per-ip"  # per-ip refuses; site not reached
    assert actions(rules, 3, ip="203.0.113.2") == [Action.ALLOW, Action.ALLOW, Action.LIMIT]
    assert rules.decide(view(ip="203.0.113.2"), 0.0).rule == "site"


def test_a_route_limit_is_one_bucket_for_every_client() -> None:
    rules = policy(limit("search", rate=1, burst=2, per="route", path="/search"))
    assert rules.decide(view(b"/search", ip="203.0.113.1"), 0.0).action is Action.ALLOW
    assert rules.decide(view(b"/search", ip="2001:db8::1"), 0.0).action is Action.ALLOW
    assert rules.decide(view(b"/search", ip="198.51.100.1"), 0.0).action is Action.LIMIT
    assert rules.decide(view(b"/", ip="198.51.100.1"), 0.0) is ALLOW


def test_a_limit_per_ip_keeps_clients_apart() -> None:
    rules = policy(limit("l", rate=1, burst=1))
    assert actions(rules, 2, ip="203.0.113.1") == [Action.ALLOW, Action.LIMIT]
    assert actions(rules, 2, ip="203.0.113.2") == [Action.ALLOW, Action.LIMIT]
    assert actions(rules, 2, ip="::ffff:203.0.113.3") == [Action.ALLOW, Action.LIMIT]


@pytest.mark.parametrize(
    ("per", "first", "same_bucket", "other_bucket"),
    [
        ("prefix", "203.0.113.1", "203.0.113.200", "203.0.114.1"),
        ("prefix", "2001:db8:1:2::1", "2001:db8:1:2:ffff::9", "2001:db8:1:3::1"),
        ("prefix48", "2001:db8:1:2::1", "2001:db8:1:ffff::9", "2001:db8:2::1"),
        ("prefix48", "203.0.113.1", "203.0.113.200", "203.0.114.1"),  # IPv4: the /24
    ],
)
def test_prefix_keys(per: str, first: str, same_bucket: str, other_bucket: str) -> None:
    rules = policy(limit("l", rate=1, burst=1, per=per))
    assert rules.decide(view(ip=first), 0.0).action is Action.ALLOW
    assert rules.decide(view(ip=same_bucket), 0.0).action is Action.LIMIT
    assert rules.decide(view(ip=other_bucket), 0.0).action is Action.ALLOW


def key(value: bytes) -> tuple[tuple[bytes, bytes], ...]:
    return ((b"x-api-key", value),)


def test_a_header_keyed_limit_counts_per_value_and_skips_requests_without_it() -> None:
    rules = policy(limit("api", rate=1, burst=2, per="header:x-api-key", path_prefix="/api/"))
    assert actions(rules, 3, path=b"/api/x", headers=key(b"alice")) == [Action.ALLOW] * 2 + [Action.LIMIT]
    assert actions(rules, 2, path=b"/api/x", headers=key(b"bob")) == [Action.ALLOW] * 2
    assert actions(rules, 20, path=b"/api/x") == [Action.ALLOW] * 20  # no key: not counted by this rule
    assert rules.decide(view(b"/api/x", headers=key(b"alice-2")), 0.0).action is Action.ALLOW  # whole value
    two_values = key(b"bob") + key(b"alice")
    assert rules.decide(view(b"/api/x", headers=two_values), 0.0).action is Action.LIMIT  # the first: bob


def test_long_header_values_are_kept_as_digests() -> None:
    rules = policy(limit("api", rate=1, burst=1, per="header:x-api-key"))
    long_a, long_b = b"k" * 5000 + b"a", b"k" * 5000 + b"b"
    assert rules.decide(view(headers=key(long_a)), 0.0).action is Action.ALLOW
    assert rules.decide(view(headers=key(long_b)), 0.0).action is Action.ALLOW  # a bucket of its own
    assert rules.decide(view(headers=key(long_a)), 0.0).action is Action.LIMIT
    limiter = rules.rules[0].limiter
    assert limiter is not None
    assert all(len(k) <= 64 for k in limiter.gcra._tat)


def test_each_limit_rule_tracks_at_most_tracked_keys() -> None:
    rules = policy(limit("l", rate=1, burst=1), tracked_keys=500)
    for i in range(5000):
        rules.decide(view(ip=f"10.0.{i // 256}.{i % 256}"), 0.0)
    limiter = rules.rules[0].limiter
    assert limiter is not None and len(limiter.gcra) <= 500


# --- log-only rules --------------------------------------------------------------------------------


def test_a_log_only_block_records_its_name_and_changes_nothing() -> None:
    rules = policy(rule("trial", "block", log_only=True, path="/wp-login.php"))
    assert rules.decide(view(b"/wp-login.php"), 0.0) == Decision(Action.ALLOW, logged=("trial",))
    assert rules.decide(view(b"/"), 0.0) is ALLOW


def test_evaluation_goes_on_after_a_log_only_rule() -> None:
    rules = policy(
        rule("trial", "block", log_only=True, path_prefix="/wp-"),
        rule("also", "block", log_only=True, path_glob="*.php"),
        rule("real", "block", path="/wp-login.php"),
    )
    assert rules.decide(view(b"/wp-login.php"), 0.0) == Decision(
        Action.BLOCK, "real", logged=("trial", "also")
    )


def test_a_log_only_limit_counts_for_real_and_logs_only_over_its_limit() -> None:
    rules = policy(limit("trial", rate=1, burst=2, log_only=True), limit("real", rate=1, burst=4))
    decisions = [rules.decide(view(), 0.0) for _ in range(5)]
    assert decisions[:2] == [ALLOW, ALLOW]
    assert decisions[2:4] == [Decision(Action.ALLOW, logged=("trial",))] * 2
    assert decisions[4] == Decision(Action.LIMIT, "real", retry_after=1, logged=("trial",))
    assert rules.decide(view(), 2.0) is ALLOW  # the trial bucket refilled as a real one would


def test_a_log_only_allow_is_refused_at_load_it_would_do_nothing() -> None:
    with pytest.raises(ConfigError, match="a log-only allow rule would do nothing"):
        policy(rule("office", "allow", log_only=True, clients=[OFFICE]), rule("all", "block"))


def test_the_examples_of_the_semantics_in_the_policy_doc() -> None:
    """docs/policy.md, "How rules are applied": the table of five requests."""

    def rules() -> Policy:
        return policy(
            rule("office", "allow", clients=[OFFICE]),
            rule("no-admin", "block", path_prefix="/admin"),
            limit("per-ip", rate=10, burst=100),
            limit("donate", rate=0.1, burst=5, methods=["POST"], path="/donate"),
        )

    doc = rules()
    assert doc.decide(view(b"/admin/", ip="192.0.2.7"), 0.0) == Decision(Action.ALLOW, "office")
    assert doc.decide(view(b"/admin/"), 0.0) == Decision(Action.BLOCK, "no-admin")
    assert doc.decide(view(b"/"), 0.0) is ALLOW
    donations = [doc.decide(view(b"/donate", method=b"POST"), 0.5 + i * 0.1) for i in range(6)]
    assert donations[:5] == [ALLOW] * 5
    assert donations[5] == Decision(Action.LIMIT, "donate", retry_after=10)

    doc = rules()
    burst = [doc.decide(view(b"/donate", method=b"POST" if i == 100 else b"GET"), 0.0) for i in range(101)]
    assert burst[:100] == [ALLOW] * 100
    assert burst[100] == Decision(Action.LIMIT, "per-ip", retry_after=1)
    assert doc.decide(view(b"/donate", method=b"POST"), 0.1).action is Action.ALLOW  # donate never counted it


# --- the limit property, through decide() ----------------------------------------------------------

CLIENTS = ["203.0.113.1", "203.0.113.2", "2001:db8::1"]


@settings(max_examples=200, deadline=None)
@given(
    rate=st.floats(min_value=0.5, max_value=200),
    burst=st.integers(min_value=1, max_value=50),
    events=st.lists(
        st.tuples(st.floats(min_value=0, max_value=0.5), st.sampled_from(CLIENTS)), min_size=1, max_size=300
    ),
)
def test_a_limit_rule_never_admits_more_than_burst_plus_rate_times_window_per_key(
    rate: float, burst: int, events: list[tuple[float, str]]
) -> None:
    rules = policy(
        rule("trial", "block", log_only=True, path="/"),  # a rule before it must not disturb the count
        limit("l", rate, burst),
    )
    now, admitted = 1000.0, defaultdict(list)
    for gap, ip in events:
        now += gap
        if rules.decide(view(ip=ip), now).action is Action.ALLOW:
            admitted[ip].append(now)
    for times in admitted.values():
        for i, start in enumerate(times):
            for j in range(i, len(times)):
                window = times[j] - start
                assert j - i + 1 <= burst + math.floor(rate * window + EPS), (start, window)


def test_a_limit_per_fingerprint_counts_one_client_software_across_addresses() -> None:
    rules = policy(limit("per-build", 0.001, 2, per="fingerprint"))
    bot = ((b"user-agent", b"x"), (b"accept-encoding", b"gzip"), (b"accept", b"*/*"))
    browser = ((b"accept", b"text/html"), (b"user-agent", b"x"), (b"accept-encoding", b"gzip"))
    answers = [rules.decide(view(ip=f"198.51.100.{n}", headers=bot), 0.0).action for n in range(1, 4)]
    assert answers == [Action.ALLOW, Action.ALLOW, Action.LIMIT], "three addresses, one build"
    assert rules.decide(view(ip="198.51.100.9", headers=browser), 0.0).action is Action.ALLOW


def test_a_limit_per_cookie_counts_each_value_and_skips_requests_without_it() -> None:
    rules = policy(limit("per-clearance", 0.001, 1, per="cookie:sw_clearance"))
    token = ((b"cookie", b"theme=dark; sw_clearance=abc"),)
    assert rules.decide(view(headers=token), 0.0).action is Action.ALLOW
    assert rules.decide(view(ip="198.51.100.7", headers=token), 0.0).action is Action.LIMIT, "any address"
    other = ((b"cookie", b"sw_clearance=xyz"),)
    assert rules.decide(view(headers=other), 0.0).action is Action.ALLOW
    assert rules.decide(view(), 0.0) is ALLOW, "no cookie: not counted"
