"""One rule in its run-time form: every condition precomputed, so matching a request (in
`Policy.decide`) is a handful of set lookups, `startswith` calls and compiled-regex searches, with no
allocation. A condition the rule does not have is None (or empty), so it costs one comparison.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from shieldwall.net.networks import NetworkSet
from shieldwall.policy.decision import Action, Decision
from shieldwall.policy.limit import RuleLimiter, RuleSlots

PathTest = Callable[[bytes], re.Match[bytes] | None]


@dataclass(frozen=True, slots=True)
class CompiledRule:
    name: str
    action: Action
    log_only: bool
    decision: Decision  # what an allow/block/challenge/tarpit rule answers (precomputed: no allocation)
    limiter: RuleLimiter | None  # set exactly for limit rules
    slots: RuleSlots | None  # set exactly for concurrency rules
    methods: frozenset[bytes] | None  # upper-case, as llhttp only accepts upper-case methods
    hosts: frozenset[bytes] | None  # exact names, lower-case, no trailing dot; None: no hosts condition
    host_suffixes: tuple[bytes, ...]  # b".example.org" for "*.example.org"
    path: bytes | None
    path_prefix: bytes | None
    path_tests: tuple[PathTest, ...]  # the glob's fullmatch and the regex's search
    clients: NetworkSet | None  # a CIDR set with a bounded per-address cache
    headers: tuple[tuple[bytes, re.Pattern[bytes]], ...]  # (lower-case name, pattern searched in a value)
    asns: frozenset[int]  # the client's autonomous system, from the operator's data; empty: no condition
    countries: frozenset[str]  # likewise its country, ISO 3166 alpha-2, upper-case

    @property
    def looks_at_path(self) -> bool:
        return self.path is not None or self.path_prefix is not None or bool(self.path_tests)


def paths_match(tests: tuple[PathTest, ...], path: bytes) -> bool:
    """Every path test passes. A loop, not all(): no generator object per request."""
    for test in tests:  # noqa: SIM110
        if test(path) is None:
            return False
    return True


def headers_match(
    conditions: tuple[tuple[bytes, re.Pattern[bytes]], ...], headers: tuple[tuple[bytes, bytes], ...]
) -> bool:
    """Every named header is present and one of its values matches. Any value of a repeated header may
    match: checking only the first would let a client hide a value behind a harmless one when the origin
    reads the last. Loops, not any()/all(): no generator objects per request."""
    for name, pattern in conditions:
        for key, value in headers:
            if key == name and pattern.search(value) is not None:
                break
        else:
            return False
    return True
