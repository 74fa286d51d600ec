"""What a report needs beyond the detector's `Incident`: facts only other parts of the shield, or the
operator, know. Every field is optional; a report leaves out (or asks the operator to fill in) what is
missing, and never guesses it.

They travel as one JSON file beside the incident (see files.py), `ReportFacts.to_json()`:
    {"format": "shieldwall-report-facts/1",
     "organisation": "Example Borough Council", "site": "www.example.gov.uk",
     "origin": "web server 10.0.0.5:8080",
     "contact": {"name": "...", "role": "...", "email": "...", "phone": "..."},
     "tlp": "amber", "latency_slo": 0.5,
     "signatures": [{"conditions": [["path", "/search"], ["user_agent", "curl/8"]], "action": "block",
                     "coverage": 0.97, "collateral": 0.0, "first_seen": 1718000321.0,
                     "last_seen": 1718003900.0, "requests": 123456, "decided_by": "automatic"}],
     "bans": [<the ban objects of state/ban_store.py: target, until, reason, source, level, since>],
     "actions": [{"at": 1718000400.0, "what": "called the hosting provider", "by": "Jane Doe"}],
     "top": {"prefixes": [{"value": "203.0.113.0/24", "requests": 900000, "share": 0.31,
                           "label": ""}], "asns": [...], "fingerprints": [...], "user_agents": [...]},
     "impact": {"success_rate": 0.992, "success_rate_before": 0.998,
                "challenges_issued": 50000, "challenges_passed": 1200},
     "informed": "...", "next_steps": "...", "notes": "..."}
Times are wall-clock epoch seconds; shares are fractions (0.31 = 31 %). `top` shares are of all the
requests the shield saw during the incident. `impact.success_rate` is the share of requests that
reached the origin (or the cache) and got an answer other than a 5xx. A missing key is its default.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, Final, Literal, cast, get_args

from shieldwall.detector.signatures import Signature, SignatureAction
from shieldwall.detector.sketches import Summary
from shieldwall.limiter.bans import Ban
from shieldwall.state.ban_store import ban_entry, parse_ban

FACTS_FORMAT: Final = "shieldwall-report-facts/1"
AUTOMATIC: Final = "automatic"
"""`by` of what shieldwall did by itself; anything else names a person (or "an operator")."""
AN_OPERATOR: Final = "an operator"

Tlp = Literal["clear", "green", "amber", "red"]
TLPS: Final[tuple[Tlp, ...]] = get_args(Tlp)
"""Traffic Light Protocol levels a report can carry (TLP 2.0 names; "clear" is TLP 1.0's "white").
AMBER+STRICT is left out: STIX 2.1 has no standard marking for it."""


@dataclass(frozen=True, slots=True)
class Contact:
    """Who the CERT should talk to (the NCSC asks for name, role, phone and email)."""

    name: str = ""
    role: str = ""
    email: str = ""
    phone: str = ""


@dataclass(frozen=True, slots=True)
class TopEntry:
    """One of the biggest senders along one dimension: `value` is a prefix ("203.0.113.0/24"), an ASN
    ("AS64500"), a header-order fingerprint ("9f2c01ab+cr") or a user agent; `label` says more (the
    ASN's name)."""

    value: str
    requests: int
    share: float
    label: str = ""


@dataclass(frozen=True, slots=True)
class TopSources:
    prefixes: tuple[TopEntry, ...] = ()
    asns: tuple[TopEntry, ...] = ()
    fingerprints: tuple[TopEntry, ...] = ()
    user_agents: tuple[TopEntry, ...] = ()


def top_entries(summary: Summary, limit: int = 10, total: int | None = None) -> tuple[TopEntry, ...]:
    """The `limit` largest entries of a heavy-hitter summary (counts are upper bounds, see Summary),
    with their share of `total` (default: the summary's stream length)."""
    total = summary.n if total is None else total
    return tuple(
        TopEntry(key, count, count / total if total else 0.0) for key, count, _ in summary.entries[:limit]
    )


@dataclass(frozen=True, slots=True)
class SignatureRecord:
    """A signature as it stood during the incident: the miner's `signature` (its conditions, action,
    coverage and collateral estimates), with wall-clock `first_seen`/`last_seen`, the `requests` it
    matched (None: not counted) and who put it in force (`decided_by`: AUTOMATIC, or the operator who
    pinned it). The signature's own created/expires (monotonic in the supervisor) are replaced by the
    wall-clock times, so a record read back from its file equals the one written."""

    signature: Signature
    first_seen: float
    last_seen: float | None = None
    requests: int | None = None
    decided_by: str = AUTOMATIC

    def __post_init__(self) -> None:
        expires = self.first_seen if self.last_seen is None else self.last_seen
        if (self.signature.created, self.signature.expires) != (self.first_seen, expires):
            object.__setattr__(
                self, "signature", replace(self.signature, created=self.first_seen, expires=expires)
            )

    @property
    def id(self) -> str:
        return self.signature.id

    @property
    def description(self) -> str:
        return self.signature.describe()


@dataclass(frozen=True, slots=True)
class Action:
    """Something done about the attack, at wall time `at`, by AUTOMATIC or a person."""

    at: float
    what: str
    by: str = AN_OPERATOR


@dataclass(frozen=True, slots=True)
class ImpactFacts:
    success_rate: float | None = None  # during the incident (see the module docstring)
    success_rate_before: float | None = None  # the same before it, for comparison
    challenges_issued: int | None = None
    challenges_passed: int | None = None


@dataclass(frozen=True, slots=True)
class ReportFacts:
    organisation: str = ""
    site: str = ""  # the service attacked, as people know it: "www.example.gov.uk"
    origin: str = ""  # what the shield protects: "web server 10.0.0.5:8080"
    contact: Contact = field(default_factory=Contact)
    tlp: Tlp = "amber"
    latency_slo: float | None = None  # origin p95 above this is "slowed down"; None: from the baseline
    signatures: tuple[SignatureRecord, ...] = ()
    bans: tuple[Ban, ...] = ()
    actions: tuple[Action, ...] = ()
    top: TopSources = field(default_factory=TopSources)
    impact: ImpactFacts = field(default_factory=ImpactFacts)
    informed: str = ""  # who else has been told (the NCSC asks)
    next_steps: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        if self.tlp not in TLPS:
            raise ValueError(f"tlp must be one of {', '.join(TLPS)}")

    def merged(self, other: ReportFacts) -> ReportFacts:
        """These facts with every field `other` sets (differs from the default) taken from `other`:
        an operator's file of organisation details over the facts stored with an incident."""
        default = ReportFacts()
        changes = {
            item.name: getattr(other, item.name)
            for item in fields(ReportFacts)
            if getattr(other, item.name) != getattr(default, item.name)
        }
        return replace(self, **changes)

    def to_json(self) -> str:
        return json.dumps(_facts_document(self), sort_keys=True, separators=(",", ":"))

    @staticmethod
    def from_json(text: str) -> ReportFacts:
        """Raises ValueError naming the first bad field."""
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON: {exc}") from None
        if not isinstance(document, dict) or document.get("format") != FACTS_FORMAT:
            raise ValueError(f'not a report facts file: "format" must be "{FACTS_FORMAT}"')
        return _parse_facts(document)


def _facts_document(facts: ReportFacts) -> dict[str, Any]:
    contact, top, impact = facts.contact, facts.top, facts.impact
    return {
        "format": FACTS_FORMAT,
        "organisation": facts.organisation,
        "site": facts.site,
        "origin": facts.origin,
        "contact": {
            "name": contact.name,
            "role": contact.role,
            "email": contact.email,
            "phone": contact.phone,
        },
        "tlp": facts.tlp,
        "latency_slo": facts.latency_slo,
        "signatures": [
            {
                "conditions": [list(condition) for condition in record.signature.conditions],
                "action": record.signature.action,
                "coverage": record.signature.coverage,
                "collateral": record.signature.collateral,
                "first_seen": record.first_seen,
                "last_seen": record.last_seen,
                "requests": record.requests,
                "decided_by": record.decided_by,
            }
            for record in facts.signatures
        ],
        "bans": [ban_entry(ban) for ban in facts.bans],
        "actions": [{"at": action.at, "what": action.what, "by": action.by} for action in facts.actions],
        "top": {
            name: [
                {"value": entry.value, "requests": entry.requests, "share": entry.share, "label": entry.label}
                for entry in getattr(top, name)
            ]
            for name in ("prefixes", "asns", "fingerprints", "user_agents")
        },
        "impact": {
            "success_rate": impact.success_rate,
            "success_rate_before": impact.success_rate_before,
            "challenges_issued": impact.challenges_issued,
            "challenges_passed": impact.challenges_passed,
        },
        "informed": facts.informed,
        "next_steps": facts.next_steps,
        "notes": facts.notes,
    }


class _Reader:
    """Typed access to one JSON object, errors naming the path: "signatures[2].coverage: ..."."""

    def __init__(self, data: Any, path: str) -> None:
        if not isinstance(data, dict):
            raise ValueError(f"{path or 'the file'}: must be an object")
        self.data: Mapping[str, Any] = data
        self.path = path

    def _name(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def text(self, key: str) -> str:
        value = self.data.get(key, "")
        if not isinstance(value, str):
            raise ValueError(f"{self._name(key)}: must be a string")
        return value

    def number(self, key: str) -> float:
        value = self.data.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ValueError(f"{self._name(key)}: must be a number")
        return float(value)

    def optional_number(self, key: str) -> float | None:
        return None if self.data.get(key) is None else self.number(key)

    def optional_count(self, key: str) -> int | None:
        value = self.data.get(key)
        if value is None:
            return None
        if type(value) is not int or value < 0:
            raise ValueError(f"{self._name(key)}: must be a whole number >= 0")
        return value

    def share(self, key: str) -> float:
        value = self.number(key)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"{self._name(key)}: must be a fraction from 0 to 1")
        return value

    def optional_share(self, key: str) -> float | None:
        return None if self.data.get(key) is None else self.share(key)

    def items(self, key: str) -> Iterable[tuple[Any, str]]:
        value = self.data.get(key, [])
        if not isinstance(value, list):
            raise ValueError(f"{self._name(key)}: must be a list")
        return ((item, f"{self._name(key)}[{index}]") for index, item in enumerate(value))

    def child(self, key: str) -> _Reader:
        return _Reader(self.data.get(key, {}), self._name(key))


def _parse_facts(document: dict[str, Any]) -> ReportFacts:
    root = _Reader(document, "")
    contact = root.child("contact")
    top = root.child("top")
    impact = root.child("impact")
    tlp = root.text("tlp") or "amber"
    if tlp not in TLPS:
        raise ValueError(f"tlp: must be one of {', '.join(TLPS)}")
    latency_slo = root.optional_number("latency_slo")
    if latency_slo is not None and latency_slo <= 0:
        raise ValueError("latency_slo: must be > 0")
    bans = []
    for item, path in root.items("bans"):
        try:
            bans.append(parse_ban(item))
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from None
    return ReportFacts(
        organisation=root.text("organisation"),
        site=root.text("site"),
        origin=root.text("origin"),
        contact=Contact(
            contact.text("name"), contact.text("role"), contact.text("email"), contact.text("phone")
        ),
        tlp=tlp,
        latency_slo=latency_slo,
        signatures=tuple(_signature(_Reader(item, path)) for item, path in root.items("signatures")),
        bans=tuple(bans),
        actions=tuple(_action(_Reader(item, path)) for item, path in root.items("actions")),
        top=TopSources(
            *(
                tuple(_top_entry(_Reader(item, path)) for item, path in top.items(name))
                for name in ("prefixes", "asns", "fingerprints", "user_agents")
            )
        ),
        impact=ImpactFacts(
            impact.optional_share("success_rate"),
            impact.optional_share("success_rate_before"),
            impact.optional_count("challenges_issued"),
            impact.optional_count("challenges_passed"),
        ),
        informed=root.text("informed"),
        next_steps=root.text("next_steps"),
        notes=root.text("notes"),
    )


def _signature(item: _Reader) -> SignatureRecord:
    conditions = []
    for condition, path in item.items("conditions"):
        if not (
            isinstance(condition, list) and len(condition) == 2 and all(isinstance(p, str) for p in condition)
        ):
            raise ValueError(f"{path}: must be [feature name, value]")
        conditions.append((condition[0], condition[1]))
    action = item.text("action")
    if action not in get_args(SignatureAction):
        raise ValueError(f'{item.path}.action: must be "block" or "challenge"')
    first_seen, last_seen = item.number("first_seen"), item.optional_number("last_seen")
    coverage, collateral = item.share("coverage"), item.share("collateral")
    try:
        signature = Signature(
            tuple(conditions), coverage, collateral, cast(SignatureAction, action), 0.0, 0.0
        )
    except ValueError as exc:
        raise ValueError(f"{item.path}.conditions: {exc}") from None
    return SignatureRecord(
        signature,
        first_seen,
        last_seen,
        item.optional_count("requests"),
        item.text("decided_by") or AUTOMATIC,
    )


def _action(item: _Reader) -> Action:
    return Action(item.number("at"), item.text("what"), item.text("by") or AN_OPERATOR)


def _top_entry(item: _Reader) -> TopEntry:
    requests = item.optional_count("requests")
    return TopEntry(item.text("value"), requests or 0, item.share("share"), item.text("label"))
