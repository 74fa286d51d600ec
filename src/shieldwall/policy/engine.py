"""`Policy.decide(view, now)`: the rules, in order, applied to one request. Semantics: docs/policy.md.

Per request, in a worker's event loop, so it allocates nothing but the Decision it returns, and not
even that when the answer is a plain allow or a rule's precomputed allow/block.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from shieldwall.limiter.cluster_tally import ClusterTally
from shieldwall.limiter.concurrency import OpenCounts
from shieldwall.net.ipdata import IpInfo, IpLookup
from shieldwall.policy.decision import ALLOW, Action, Decision, RequestView
from shieldwall.policy.paths import normalise_path
from shieldwall.policy.rule import CompiledRule, headers_match, paths_match


class ChallengeGate(Protocol):
    """What lets a request through a challenge rule without the challenge: a valid clearance cookie,
    a route exempt from challenges (feeds, APIs), a verified crawler. Asked only when a challenge rule
    applies, so its cost (an HMAC) is not paid by requests no challenge rule covers."""

    def passes(self, view: RequestView) -> bool: ...


class _NoGate:
    """Without a gate every challenge rule challenges (tests and policies without challenge rules)."""

    def passes(self, view: RequestView) -> bool:
        return False


class _NoData:
    """Without a data file nothing is known about an address, so no `asns` or `countries` condition
    holds (the configuration refuses such rules without `[client_data]`)."""

    def lookup(self, ip: str) -> IpInfo | None:
        return None


class Policy:
    """The compiled rules of one configuration (see policy.compile). `empty` is True when there are
    none: the data plane then skips building a RequestView at all."""

    __slots__ = ("_lookup", "_match_paths", "empty", "gate", "rules")

    def __init__(
        self,
        rules: tuple[CompiledRule, ...],
        gate: ChallengeGate | None = None,
        ipdata: IpLookup | None = None,
    ) -> None:
        self.rules = rules
        self.empty = not rules
        self.gate: ChallengeGate = gate or _NoGate()
        self._lookup: Callable[[str], IpInfo | None] = (_NoData() if ipdata is None else ipdata).lookup
        # Normalising the path costs ~0.2 µs even when it is already normal: only pay it when it is used.
        self._match_paths = any(rule.looks_at_path for rule in rules)

    def cluster_tallies(self) -> dict[str, ClusterTally]:
        """Rule name -> tally, for the `scope = "cluster"` limit rules (dataplane/cluster_limits.py)."""
        return {
            rule.name: rule.limiter.tally
            for rule in self.rules
            if rule.limiter is not None and rule.limiter.tally is not None
        }

    def decide(self, view: RequestView, now: float) -> Decision:
        """The first rule that stops the request decides; a limit rule under its limit lets evaluation
        go on, and a log-only rule only records its name in `logged`."""
        logged: tuple[str, ...] = ()  # the empty tuple is a singleton: no allocation
        held: tuple[tuple[OpenCounts, str], ...] = ()
        info: IpInfo | None = None  # the client's ASN and country, looked up once, if a rule needs them
        looked_up = False
        method, host, client_ip = view.method, view.host, view.client_ip
        path = normalise_path(view.path) if self._match_paths else view.path  # see policy/paths.py
        if host.endswith(b"."):
            host = host[:-1]  # "example.org." names the same site as "example.org"
        for rule in self.rules:
            # The conditions, inline rather than a method per rule: a call per rule would double the
            # cost of a policy that does not match. Cheapest first; an absent condition is None or ().
            if rule.methods is not None and method not in rule.methods:
                continue
            if rule.hosts is not None and host not in rule.hosts and not host.endswith(rule.host_suffixes):
                continue
            if rule.path is not None and path != rule.path:
                continue
            if rule.path_prefix is not None and not path.startswith(rule.path_prefix):
                continue
            if rule.clients is not None and not rule.clients.contains(client_ip):
                continue
            if rule.path_tests and not paths_match(rule.path_tests, path):
                continue
            if rule.headers and not headers_match(rule.headers, view.headers):
                continue
            if rule.asns or rule.countries:  # last: the data file's lookup, 0.1 µs cached, 2.5-6 µs not
                if not looked_up:
                    info = self._lookup(client_ip)
                    looked_up = True
                if (
                    info is None  # an address the data does not know matches no asns or countries
                    or (rule.asns and info.asn not in rule.asns)
                    or (rule.countries and info.country not in rule.countries)
                ):
                    continue
            slots = rule.slots
            if slots is not None:  # a concurrency rule: hold a slot while the request is served
                key = slots.key_of(view)
                if key is None:
                    continue
                if slots.counts.acquire(key):
                    held += ((slots.counts, key),)
                    continue
                if rule.log_only:
                    logged += (rule.name,)
                    continue
                _give_back(held)
                return Decision(Action.LIMIT, rule.name, 1, logged)
            limiter = rule.limiter
            if limiter is None:  # allow, block, challenge or tarpit
                if rule.action is Action.CHALLENGE and self.gate.passes(view):
                    continue  # cleared, exempt or a verified crawler: the later rules still apply
                if not rule.log_only:
                    if rule.action is Action.ALLOW:
                        if held:
                            return Decision(Action.ALLOW, rule.name, logged=logged, held=held)
                    else:
                        _give_back(held)
                    return replace(rule.decision, logged=logged) if logged else rule.decision
                if rule.action is not Action.ALLOW:  # a log-only allow would have refused nothing
                    logged += (rule.name,)
                continue
            retry_after = limiter.check(view, now)
            if retry_after is None:
                continue
            if rule.log_only:
                logged += (rule.name,)
                continue
            _give_back(held)
            return Decision(Action.LIMIT, rule.name, retry_after, logged)
        if held:
            return Decision(Action.ALLOW, logged=logged, held=held)
        return Decision(Action.ALLOW, logged=logged) if logged else ALLOW


def _give_back(held: tuple[tuple[OpenCounts, str], ...]) -> None:
    """A request refused after it took concurrency slots gives them back at once."""
    for counts, key in held:
        counts.release(key)
