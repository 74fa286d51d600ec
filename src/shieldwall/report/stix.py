"""The STIX 2.1 bundle, built with the `stix2` library, for CERTs and threat-intelligence platforms.

What goes in, and why:
- the TLP marking the operator chose (default AMBER), on every object made here: TLP:CLEAR maps to the
  library's TLP_WHITE (the same level, renamed in TLP 2.0); AMBER+STRICT has no standard STIX 2.1
  marking and is not offered;
- an `identity` for the reporting organisation (the victim), with its contact;
- an `attack-pattern` "HTTP flood", referencing CAPEC-488 (HTTP Flood) and ATT&CK T1499.002 (Endpoint
  Denial of Service: Service Exhaustion Flood), which `targets` the identity;
- the `incident`, described by the plain-words summary and `related-to` the attack pattern (STIX 2.1
  defines no more specific relationship for an incident);
- `observed-data` for the top sources: the top networks as `ipv4-addr`/`ipv6-addr` objects (a /24 or
  /64 as a CIDR value, which STIX allows) and the top ASNs as `autonomous-system` objects;
- one `indicator` per top network (at most `MAX_NETWORK_INDICATORS`), pattern
  `[ipv4-addr:value ISSUBSET '203.0.113.0/24']` (or `ipv6-addr`, or `=` for a single address), valid
  from the attack's start until `INDICATOR_LIFETIME` after its end: flood sources are mostly hijacked
  devices and shared addresses, which turn innocent again; each `indicates` the attack pattern and has
  a `sighting` (count: requests seen from it, where: the identity, what: the observed data);
- one `indicator` per attack signature that STIX patterning can state exactly enough: conditions on the
  method, path, user agent and client network map onto `network-traffic` with the `http-request-ext`
  extension; a signature that also needs the query shape, header order, Host or Accept-Language
  (no faithful STIX property) gets none, since a looser pattern would flag real visitors elsewhere;
- a `report` listing everything, so a platform files it as one piece.
Ids are UUIDv5 of the organisation, the incident and the object, and every timestamp is the report's or
the attack's, so the same report always gives the same bundle (golden files) and re-sending it updates
the same objects instead of adding copies.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final

import stix2  # type: ignore[import-untyped]

from shieldwall.net.networks import parse_network
from shieldwall.report import summary
from shieldwall.report.facts import SignatureRecord, TopEntry
from shieldwall.report.model import ReportData

MAX_NETWORK_INDICATORS: Final = 25
INDICATOR_LIFETIME: Final = 24 * 3600.0
_MAX_COUNT: Final = 999_999_999  # the largest count STIX allows
_NAMESPACE: Final = uuid.UUID("5b0c7e0e-2b8f-4a55-9a77-3c8d8f3f6a10")  # shieldwall's, fixed forever
_TLP: Final = {
    "clear": stix2.TLP_WHITE,
    "green": stix2.TLP_GREEN,
    "amber": stix2.TLP_AMBER,
    "red": stix2.TLP_RED,
}
_HTTP: Final = "network-traffic:extensions.'http-request-ext'"
_ASN: Final = re.compile(r"(?:AS)?([0-9]{1,10})", re.IGNORECASE)


def _quote(text: str) -> str:
    """A STIX pattern string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _when(wall: float) -> datetime:
    return datetime.fromtimestamp(round(wall, 3), tz=UTC)


def _network_pattern(value: str) -> str | None:
    try:
        network = parse_network(value)
    except ValueError:
        return None
    kind = "ipv4-addr" if network.version == 4 else "ipv6-addr"
    if network.prefixlen == network.max_prefixlen:
        return f"[{kind}:value = {_quote(str(network.network_address))}]"
    return f"[{kind}:value ISSUBSET {_quote(str(network))}]"


def _signature_pattern(record: SignatureRecord) -> str | None:
    """The signature as a STIX pattern, or None when it cannot be stated faithfully (module docstring)."""
    terms = []
    for name, value in record.signature.conditions:
        if name == "method":
            terms.append(f"{_HTTP}.request_method = {_quote(value)}")
        elif name == "path" and "%" not in value and "_" not in value:
            field = f"{_HTTP}.request_value"  # the path, with the query string when there is one
            terms.append(f"({field} = {_quote(value)} OR {field} LIKE {_quote(value + '?%')})")
        elif name == "user_agent" and value:
            terms.append(f"{_HTTP}.request_header.'User-Agent' = {_quote(value)}")
        elif name == "prefix":
            try:
                network = parse_network(value)
            except ValueError:
                return None
            terms.append(f"network-traffic:src_ref.value ISSUBSET {_quote(str(network))}")
        else:
            return None
    return "[" + " AND ".join(terms) + "]"


def _sco(entry: TopEntry, kind: str) -> Any:
    if kind == "asn":
        match = _ASN.fullmatch(entry.value.strip())
        if match is None:
            return None
        return stix2.AutonomousSystem(number=int(match.group(1)), name=entry.label or None)
    try:
        network = parse_network(entry.value)
    except ValueError:
        return None
    text = str(network.network_address) if network.prefixlen == network.max_prefixlen else str(network)
    return stix2.IPv4Address(value=text) if network.version == 4 else stix2.IPv6Address(value=text)


class _Builder:
    def __init__(self, data: ReportData) -> None:
        self.data = data
        facts = data.facts
        self.seed = f"{facts.organisation}\n{facts.site}\n{data.incident_id}"
        self.marking = _TLP[facts.tlp]
        self.created = _when(data.generated)
        self.first = _when(data.started)
        last = data.ended if data.ended is not None else max(data.generated, data.started)
        self.last = _when(last)
        self.valid_until = _when(last + INDICATOR_LIFETIME)
        self.identity_id = self.id("identity", "reporter")
        self.objects: list[Any] = []

    def id(self, kind: str, *parts: str) -> str:
        return f"{kind}--{uuid.uuid5(_NAMESPACE, chr(10).join((self.seed, kind, *parts)))}"

    def common(self, kind: str, *parts: str) -> dict[str, Any]:
        return {
            "id": self.id(kind, *parts),
            "created": self.created,
            "modified": self.created,
            "created_by_ref": self.identity_id,
            "object_marking_refs": [self.marking.id],
        }

    def add(self, item: Any) -> Any:
        self.objects.append(item)
        return item

    def relate(self, source: Any, kind: str, target: Any) -> None:
        self.add(
            stix2.Relationship(
                source_ref=source.id,
                relationship_type=kind,
                target_ref=target.id,
                **self.common("relationship", source.id, kind, target.id),
            )
        )

    def identity(self) -> Any:
        facts = self.data.facts
        contact = facts.contact
        details = "; ".join(
            part for part in (contact.name, contact.role, contact.email, contact.phone) if part
        )
        fields: dict[str, Any] = {
            "id": self.identity_id,
            "created": self.created,
            "modified": self.created,
            "name": facts.organisation or facts.site or "unnamed organisation",
            "identity_class": "organization",
            "object_marking_refs": [self.marking.id],
        }
        if details:
            fields["contact_information"] = details
        if facts.site:
            fields["description"] = f"Operator of {facts.site}"
        return self.add(stix2.Identity(**fields))

    def attack_pattern(self) -> Any:
        return self.add(
            stix2.AttackPattern(
                name="HTTP flood",
                description=(
                    "An application-layer denial-of-service attack: a flood of HTTP requests meant to "
                    "exhaust the web server or what stands behind it."
                ),
                external_references=[
                    {
                        "source_name": "capec",
                        "external_id": "CAPEC-488",
                        "url": "https://capec.mitre.org/data/definitions/488.html",
                    },
                    {
                        "source_name": "mitre-attack",
                        "external_id": "T1499.002",
                        "url": "https://attack.mitre.org/techniques/T1499/002/",
                    },
                ],
                **self.common("attack-pattern", "http-flood"),
            )
        )

    def incident(self) -> Any:
        data = self.data
        return self.add(
            stix2.Incident(
                name=f"HTTP flood against {summary.site_name(data)} ({data.incident_id})",
                description="\n\n".join(summary.paragraphs(data)),
                external_references=[{"source_name": "shieldwall", "external_id": data.incident_id}],
                **self.common("incident", "incident"),
            )
        )

    def observed(self) -> Any | None:
        top = self.data.facts.top
        entries: list[tuple[TopEntry, Any]] = []
        for kind, listed in (("network", top.prefixes), ("asn", top.asns)):
            for entry in listed:
                sco = _sco(entry, kind)
                if sco is not None and all(sco.id != seen.id for _, seen in entries):
                    entries.append((entry, sco))
        if not entries:
            return None
        for _, sco in entries:
            self.add(sco)
        # Requests from the networks listed (an ASN's requests are those of its networks again).
        counted = sum(entry.requests for entry, sco in entries if not isinstance(sco, stix2.AutonomousSystem))
        return self.add(
            stix2.ObservedData(
                first_observed=self.first,
                last_observed=self.last,
                number_observed=max(1, min(counted, _MAX_COUNT)),
                object_refs=[sco.id for _, sco in entries],
                **self.common("observed-data", "top-sources"),
            )
        )

    def network_indicators(self, networks: Sequence[TopEntry], attack: Any, observed: Any | None) -> None:
        for entry in networks[:MAX_NETWORK_INDICATORS]:
            pattern = _network_pattern(entry.value)
            if pattern is None:
                continue
            indicator = self.add(
                stix2.Indicator(
                    name=f"Source of an HTTP flood: {entry.value}",
                    description=(
                        f"Sent {entry.requests:,} requests ({entry.share:.1%} of all) during incident "
                        f"{self.data.incident_id}. Often hijacked or shared addresses: "
                        "block briefly, if at all."
                    ),
                    indicator_types=["malicious-activity"],
                    pattern=pattern,
                    pattern_type="stix",
                    valid_from=self.first,
                    valid_until=self.valid_until,
                    **self.common("indicator", "network", entry.value),
                )
            )
            self.relate(indicator, "indicates", attack)
            sighting: dict[str, Any] = {
                "sighting_of_ref": indicator.id,
                "first_seen": self.first,
                "last_seen": self.last,
                "count": max(0, min(entry.requests, _MAX_COUNT)),
                "where_sighted_refs": [self.identity_id],
                **self.common("sighting", "network", entry.value),
            }
            if observed is not None:
                sighting["observed_data_refs"] = [observed.id]
            self.add(stix2.Sighting(**sighting))

    def signature_indicators(self, attack: Any) -> None:
        for record in self.data.facts.signatures:
            pattern = _signature_pattern(record)
            if pattern is None:
                continue
            try:
                indicator = stix2.Indicator(
                    name=f"HTTP flood signature {record.id}",
                    description=f"Requests matching: {record.description}.",
                    indicator_types=["malicious-activity"],
                    pattern=pattern,
                    pattern_type="stix",
                    valid_from=self.first,
                    valid_until=self.valid_until,
                    **self.common("indicator", "signature", record.id),
                )
            except stix2.exceptions.InvalidValueError:
                continue  # a value the pattern grammar refuses even quoted: leave the signature out
            self.add(indicator)
            self.relate(indicator, "indicates", attack)

    def report(self) -> Any:
        data = self.data
        refs = [item.id for item in self.objects if not item.id.startswith("marking-definition--")]
        return self.add(
            stix2.Report(
                name=f"Incident {data.incident_id}: HTTP flood against {summary.site_name(data)}",
                description=summary.what_happened(data),
                report_types=["attack-pattern", "indicator", "observed-data"],
                published=self.created,
                object_refs=refs,
                **self.common("report", "report"),
            )
        )


def render_stix(data: ReportData) -> str:
    """The bundle as JSON text (stix2's own serialisation, pretty-printed)."""
    builder = _Builder(data)
    builder.add(builder.marking)
    identity = builder.identity()
    attack = builder.attack_pattern()
    builder.relate(attack, "targets", identity)
    incident = builder.incident()
    builder.relate(incident, "related-to", attack)
    observed = builder.observed()
    builder.network_indicators(data.facts.top.prefixes, attack, observed)
    builder.signature_indicators(attack)
    builder.report()
    bundle = stix2.Bundle(objects=builder.objects, id=builder.id("bundle", "bundle"))
    text: str = bundle.serialize(pretty=True)
    return text + "\n"
