"""Configuration of the policy engine: `[[rules]]` (what to allow, limit or block) and `[bans]`.

Rules are checked in order; see docs/policy.md for the semantics. Field shapes are validated here;
whether regular expressions compile and names are unique is checked here too, so check-config reports
a bad rule with its key path before anything runs."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, field_validator, model_validator

from shieldwall.config.client_data_schema import Asn, Country
from shieldwall.config.validators import (
    TOKEN,
    Cidr,
    PositiveFloat,
    PositiveInt,
    Section,
    StrictBool,
)

_RULE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
_LIMIT_KEY = re.compile(r"ip|prefix|prefix48|route|fingerprint|header:[a-z0-9-]+|cookie:[A-Za-z0-9_.-]+")
_HOST = re.compile(
    r"(\*\.)?([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?"
)


def _compiles(pattern: str) -> str:
    try:
        re.compile(pattern.encode())  # the engine matches bytes (what arrives on the wire)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression ({exc}); see Python's re syntax") from None
    return pattern


def _host(value: str) -> str:
    if not _HOST.fullmatch(value):
        raise ValueError("not a host name; write e.g. example.org or *.example.org (no port, no scheme)")
    return value


def _method(value: str) -> str:
    if not TOKEN.fullmatch(value):
        raise ValueError("not an HTTP method; write e.g. POST")
    return value


def _header_name(value: str) -> str:
    if not TOKEN.fullmatch(value):
        raise ValueError("not a header name; write e.g. user-agent")
    return value


Regex = Annotated[str, AfterValidator(_compiles)]
Host = Annotated[str, AfterValidator(_host)]
Method = Annotated[str, AfterValidator(_method)]
HeaderName = Annotated[str, AfterValidator(_header_name)]


class RuleMatch(Section):
    """Conditions a request must all meet (AND); a condition left out matches everything."""

    hosts: tuple[Host, ...] = Field(default=(), description="Host names; '*.example.org' matches subdomains")
    methods: tuple[Method, ...] = Field(default=(), description="e.g. ['POST']")
    path: str | None = Field(default=None, description="exact path, e.g. '/login'")
    path_prefix: str | None = Field(default=None, description="e.g. '/api/'")
    path_glob: str | None = Field(default=None, description="shell-style, e.g. '/static/*.js'")
    path_regex: Regex | None = Field(default=None, description="searched in the path")
    clients: tuple[Cidr, ...] = Field(default=(), description="client addresses, as CIDRs")
    asns: tuple[Asn, ...] = Field(
        default=(), description="the client address's autonomous system numbers (needs [client_data])"
    )
    countries: tuple[Country, ...] = Field(
        default=(), description="the client address's countries, e.g. 'DE' (ISO 3166; needs [client_data])"
    )
    headers: dict[HeaderName, Regex] = Field(
        default_factory=dict,
        description="header name → regex searched in its value; the header must be present",
    )


class RuleLimit(Section):
    rate: PositiveFloat = Field(description="requests per second, sustained")
    burst: PositiveInt = Field(description="requests allowed at once")
    per: str = Field(
        default="ip",
        description="what is counted: ip, prefix (/24 or /64), prefix48 (IPv6 /48), route (all clients "
        "together), fingerprint (the header order: one client software), header:NAME (e.g. an API key) "
        "or cookie:NAME (e.g. the clearance cookie)",
    )
    scope: Literal["node", "cluster"] = Field(
        default="node",
        description="node: each worker counts alone; cluster: the nodes of [cluster] share the limit "
        "(reconciled through Redis every cluster.sync_interval)",
    )

    @field_validator("per")
    @classmethod
    def _per(cls, value: str) -> str:
        if not _LIMIT_KEY.fullmatch(value):
            raise ValueError(
                "must be ip, prefix, prefix48, route, fingerprint, header:NAME (lower-case) or cookie:NAME"
            )
        return value


class RuleConcurrency(Section):
    max: PositiveInt = Field(description="requests matched by the rule being served at once, per bucket")
    per: str = Field(
        default="route",
        description="what is counted, as for limits: route (all clients together), ip, prefix, ...",
    )

    @field_validator("per")
    @classmethod
    def _per(cls, value: str) -> str:
        return RuleLimit._per(value)


class Rule(Section):
    name: str
    action: Literal["allow", "block", "limit", "challenge", "tarpit", "concurrency"]
    log_only: StrictBool = Field(default=False, description="record what the rule would do, do not do it")
    match: RuleMatch = RuleMatch()
    limit: RuleLimit | None = None
    concurrency: RuleConcurrency | None = None
    delay: Annotated[float, Field(gt=0, le=120, strict=True)] = Field(
        default=10.0, description="seconds a tarpit rule holds its answer (403)"
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _RULE_NAME.fullmatch(value):
            raise ValueError("not a rule name; use lower-case letters, digits, '-' and '_' (at most 63)")
        return value

    @model_validator(mode="after")
    def _limit_iff_limit_action(self) -> Rule:
        if self.action == "limit" and self.limit is None:
            raise ValueError("a rule with action = 'limit' needs a [rules.limit] table (rate, burst)")
        if self.action != "limit" and self.limit is not None:
            raise ValueError("[rules.limit] is only for action = 'limit'")
        if self.action == "allow" and self.log_only:
            raise ValueError("a log-only allow rule would do nothing; remove log_only or the rule")
        if (self.action == "concurrency") != (self.concurrency is not None):
            raise ValueError(
                "a rule with action = 'concurrency' needs a [rules.concurrency] table (max, per), "
                "and only such a rule may have one"
            )
        if self.action != "tarpit" and "delay" in self.model_fields_set:
            raise ValueError("delay is only for action = 'tarpit'")
        return self


class Bans(Section):
    """Automatic bans for repeat offenders, and where manual bans are kept."""

    enabled: StrictBool = True
    offences: PositiveInt = Field(
        default=30,
        description="refusals by the shield (a rule's 429/403, the per-IP rate guard's 429) within "
        "offence_window that earn a ban",
    )
    offence_window: PositiveFloat = Field(default=60.0, description="seconds")
    durations: tuple[PositiveFloat, ...] = Field(
        default=(60.0, 600.0, 3600.0, 86400.0),
        description="ban lengths in seconds for a first, second, ... ban; the last repeats",
    )
    memory: PositiveFloat = Field(
        default=86400.0, description="seconds a past ban still counts towards a longer next one"
    )
    allowlist: tuple[Cidr, ...] = Field(default=(), description="never banned (monitoring, office)")
    max_entries: PositiveInt = Field(default=100_000, description="bans and offenders tracked per worker")

    @field_validator("durations")
    @classmethod
    def _durations(cls, value: tuple[float, ...]) -> tuple[float, ...]:
        if not value:
            raise ValueError("give at least one ban duration")
        return value


def unique_rule_names(rules: tuple[Rule, ...]) -> tuple[Rule, ...]:
    seen: dict[str, int] = {}
    for index, rule in enumerate(rules):
        first = seen.setdefault(rule.name, index)
        if first != index:
            raise ValueError(
                f"rules[{first}] and rules[{index}] are both named {rule.name!r}; names must be unique"
            )
    return rules
