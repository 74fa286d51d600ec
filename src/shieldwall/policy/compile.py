"""Configuration rules → a Policy, once per (re)load: everything that does not depend on the request is
worked out here, so that `Policy.decide` only compares.

The schema (config/policy_schema.py) has already refused what cannot work (bad regexes and CIDRs,
names, a limit rule without its limit table); this module only translates.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from shieldwall.net.ipdata import IpLookup
from shieldwall.net.networks import NetworkSet
from shieldwall.policy.decision import Action, Decision
from shieldwall.policy.engine import ChallengeGate, Policy
from shieldwall.policy.limit import RuleLimiter, RuleSlots
from shieldwall.policy.paths import normalise_path
from shieldwall.policy.rule import CompiledRule, PathTest

if TYPE_CHECKING:
    from shieldwall.config.policy_schema import Rule, RuleMatch


def compile_policy(
    rules: Sequence[Rule],
    *,
    tracked_keys: int = 100_000,
    gate: ChallengeGate | None = None,
    ipdata: IpLookup | None = None,
) -> Policy:
    """`tracked_keys` bounds each limit rule's table of buckets (per worker); `gate` says which requests
    pass challenge rules unchallenged (see engine.ChallengeGate); `ipdata` gives the ASN and country
    of a client address, for rules with `asns` or `countries` (without it, those match nothing)."""
    return Policy(tuple(_compile_rule(rule, tracked_keys) for rule in rules), gate, ipdata)


def _compile_rule(rule: Rule, tracked_keys: int) -> CompiledRule:
    # A concurrency rule refuses like a limit (429) when its slots are taken.
    action = Action.LIMIT if rule.action == "concurrency" else Action(rule.action)
    match = rule.match
    limiter = None
    if rule.limit is not None:
        limiter = RuleLimiter(
            rule.limit.rate,
            rule.limit.burst,
            rule.limit.per,
            tracked_keys,
            cluster=rule.limit.scope == "cluster",
        )
    slots = None
    if rule.concurrency is not None:
        slots = RuleSlots(rule.concurrency.max, rule.concurrency.per)
    exact_hosts, host_suffixes = _hosts(match.hosts)
    return CompiledRule(
        name=rule.name,
        action=action,
        log_only=rule.log_only,
        decision=Decision(action, rule.name, delay=rule.delay if action is Action.TARPIT else 0.0),
        limiter=limiter,
        slots=slots,
        methods=frozenset(m.upper().encode() for m in match.methods) if match.methods else None,
        hosts=exact_hosts if match.hosts else None,
        host_suffixes=host_suffixes,
        # Written like the request's path is compared: "/%7Euser" is "/~user" on both sides.
        path=None if match.path is None else normalise_path(match.path.encode()),
        path_prefix=None if match.path_prefix is None else normalise_path(match.path_prefix.encode()),
        path_tests=_path_tests(match),
        clients=NetworkSet(match.clients) if match.clients else None,
        headers=tuple(
            (name.lower().encode(), re.compile(pattern.encode())) for name, pattern in match.headers.items()
        ),
        asns=frozenset(match.asns),
        countries=frozenset(match.countries),
    )


def _hosts(hosts: Sequence[str]) -> tuple[frozenset[bytes], tuple[bytes, ...]]:
    """Exact names, and the suffixes that "*.example.org" stands for (any depth of subdomain, not the
    bare name), lower-case and without a trailing dot, as the request's Host is compared."""
    exact: set[bytes] = set()
    suffixes: list[bytes] = []
    for host in hosts:
        name = host.lower().rstrip(".").encode()
        if name.startswith(b"*."):
            suffixes.append(name[1:])
        else:
            exact.add(name)
    return frozenset(exact), tuple(suffixes)


def _path_tests(match: RuleMatch) -> tuple[PathTest, ...]:
    """The glob as a compiled regex that must match the whole path (fnmatch's `*` also crosses '/'),
    and the regex, searched anywhere in the path. Both work on the path's bytes, as received."""
    tests: list[PathTest] = []
    if match.path_glob is not None:
        tests.append(re.compile(fnmatch.translate(match.path_glob).encode()).fullmatch)
    if match.path_regex is not None:
        tests.append(re.compile(match.path_regex.encode()).search)
    return tuple(tests)
