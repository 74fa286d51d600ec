"""What the policy engine is asked about (RequestView) and what it answers (Decision)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from shieldwall.limiter.concurrency import OpenCounts


@dataclass(frozen=True, slots=True)
class RequestView:
    """The facts about one request that rules may look at. Built only when a policy has rules."""

    client_ip: str
    prefix: str  # the client's IPv4 /24 or IPv6 /64, e.g. "203.0.113.0/24"
    method: bytes  # e.g. b"GET"
    host: bytes  # Host header, lower-cased, without the port
    path: bytes  # request target up to "?", e.g. b"/donate"
    query: bytes  # after "?", without it; b"" when absent
    headers: tuple[tuple[bytes, bytes], ...]  # (lower-cased name, value), in the order received

    def header(self, name: bytes) -> bytes | None:
        """The first value of a header; `name` lower-case."""
        for key, value in self.headers:
            if key == name:
                return value
        return None


class Action(StrEnum):
    ALLOW = "allow"
    LIMIT = "limit"  # 429 + Retry-After
    BLOCK = "block"  # 403
    CHALLENGE = "challenge"  # the proof-of-work page (403), for clients without a clearance
    TARPIT = "tarpit"  # 403, but only after `delay` seconds: the attacker's connection and time are wasted


@dataclass(frozen=True, slots=True)
class Decision:
    action: Action
    rule: str | None = None  # the rule that decided; None for the default
    retry_after: int | None = None  # seconds, for LIMIT
    logged: tuple[str, ...] = ()  # log-only rules that would have acted on this request
    delay: float = 0.0  # seconds to hold a TARPIT answer
    # Slots of concurrency rules this request holds while it is served (see policy/limit.RuleSlots); the
    # data plane gives them back when the request is done. Only an ALLOW holds any.
    held: tuple[tuple[OpenCounts, str], ...] = ()

    @property
    def status(self) -> int:
        """The HTTP status the shield answers with (0: none, the request goes on to the origin)."""
        return _STATUS[self.action]


_STATUS = {Action.ALLOW: 0, Action.LIMIT: 429, Action.BLOCK: 403, Action.CHALLENGE: 403, Action.TARPIT: 403}


ALLOW = Decision(Action.ALLOW)
