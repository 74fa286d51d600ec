"""The STIX 2.1 bundle: stix2's own parser accepts it; it holds the identity, attack pattern, incident,
observed data, indicators, sightings, relationships and report, all under the operator's TLP marking;
patterns say what the sources and signatures are and nothing looser; the same report gives the same
bundle."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest
import stix2
from report_sample import HOSTILE_AGENT, detector_incident, sample_facts

from shieldwall.detector.signatures import Signature
from shieldwall.report.facts import ReportFacts, SignatureRecord, Tlp, TopEntry, TopSources
from shieldwall.report.model import ReportData, build_report
from shieldwall.report.stix import render_stix


@pytest.fixture(scope="module")
def data() -> ReportData:
    incident = detector_incident()
    return build_report(incident, sample_facts(incident), generated=(incident.closed or 0.0) + 600)


@pytest.fixture(scope="module")
def text(data: ReportData) -> str:
    return render_stix(data)


@pytest.fixture(scope="module")
def objects(text: str) -> list[Any]:
    bundle = stix2.parse(text, allow_custom=False)
    assert bundle.type == "bundle"
    return list(bundle.objects)


def of_type(objects: list[Any], kind: str) -> list[Any]:
    return [item for item in objects if item.type == kind]


def test_the_library_parses_it_with_the_expected_objects(objects: list[Any]) -> None:
    assert Counter(item.type for item in objects) == {
        "marking-definition": 1,
        "identity": 1,
        "attack-pattern": 1,
        "incident": 1,
        "ipv4-addr": 2,
        "ipv6-addr": 1,
        "autonomous-system": 2,
        "observed-data": 1,
        "indicator": 5,  # three networks, two of the three signatures (see below)
        "sighting": 3,
        "relationship": 7,  # attack-pattern targets identity, incident related-to it, 5 indicates
        "report": 1,
    }


def test_everything_made_here_carries_the_tlp_and_the_reporter(objects: list[Any]) -> None:
    (marking,) = of_type(objects, "marking-definition")
    assert marking.id == stix2.TLP_AMBER.id
    (identity,) = of_type(objects, "identity")
    assert identity.name == "Example Borough Council" and identity.identity_class == "organization"
    assert "it-security@example.gov.uk" in identity.contact_information
    for item in objects:
        if item.type in ("marking-definition", "ipv4-addr", "ipv6-addr", "autonomous-system"):
            continue
        assert item.object_marking_refs == [marking.id], item.type
        if item.type != "identity":
            assert item.created_by_ref == identity.id, item.type


def test_indicators_for_networks_and_expressible_signatures(objects: list[Any]) -> None:
    patterns = sorted(indicator.pattern for indicator in of_type(objects, "indicator"))
    http = "network-traffic:extensions.'http-request-ext'"
    hostile = f"[{http}.request_header.'User-Agent' = '<script>alert(\\'x\\')</script> | **bold**"
    assert [pattern for pattern in patterns if pattern.startswith(hostile)] == [patterns[-1]]
    assert patterns[:-1] == sorted(
        [
            "[ipv4-addr:value ISSUBSET '203.0.113.0/24']",
            "[ipv6-addr:value ISSUBSET '2001:db8:1:2::/64']",
            "[ipv4-addr:value ISSUBSET '198.51.100.0/24']",
            f"[({http}.request_value = '/search' OR {http}.request_value LIKE '/search?%') AND "
            f"{http}.request_header.'User-Agent' = 'curl/8.5.0']",
        ]
    )
    # The challenge signature needs the query shape, which no STIX property states: no indicator.
    names = {indicator.name for indicator in of_type(objects, "indicator")}
    assert "HTTP flood signature sig-af151ed08a" not in names
    for indicator in of_type(objects, "indicator"):
        assert indicator.valid_until > indicator.valid_from
        assert indicator.indicator_types == ["malicious-activity"]


def test_relationships_and_sightings_connect_the_graph(objects: list[Any]) -> None:
    ids = {item.id for item in objects}
    by_type = {item.type: item for item in objects}
    relations = {
        (r.source_ref.split("--")[0], r.relationship_type, r.target_ref.split("--")[0])
        for r in of_type(objects, "relationship")
    }
    assert relations == {
        ("attack-pattern", "targets", "identity"),
        ("incident", "related-to", "attack-pattern"),
        ("indicator", "indicates", "attack-pattern"),
    }
    for relationship in of_type(objects, "relationship"):
        assert relationship.source_ref in ids and relationship.target_ref in ids
    observed = by_type["observed-data"]
    assert set(observed.object_refs) <= ids
    assert observed.number_observed == 380_000 + 150_000 + 60_000
    for sighting in of_type(objects, "sighting"):
        assert sighting.sighting_of_ref in ids
        assert sighting.where_sighted_refs == [by_type["identity"].id]
        assert sighting.observed_data_refs == [observed.id]
    assert {s.count for s in of_type(objects, "sighting")} == {380_000, 150_000, 60_000}
    report = by_type["report"]
    assert set(report.object_refs) == ids - {report.id, by_type["marking-definition"].id}
    refs = {ref["external_id"] for ref in by_type["attack-pattern"].external_references}
    assert refs == {"CAPEC-488", "T1499.002"}
    assert by_type["incident"].external_references[0]["external_id"] == by_type["report"].name.split()[1][:-1]


def test_the_same_report_gives_the_same_bundle(data: ReportData, text: str) -> None:
    assert render_stix(data) == text
    other = ReportFacts(organisation="Another Org", site="www.example.gov.uk")
    ids = {item["id"] for item in json.loads(text)["objects"]}
    again = {
        item["id"]
        for item in json.loads(render_stix(build_report(detector_incident(), other, generated=0.0)))[
            "objects"
        ]
    }
    made_here = {i for i in ids if not i.startswith(("marking-definition--", "ipv4-addr--", "ipv6-addr--"))}
    assert not made_here & again, "another organisation's objects must not share ids"


@pytest.mark.parametrize(
    ("tlp", "marking"), [("clear", stix2.TLP_WHITE), ("green", stix2.TLP_GREEN), ("red", stix2.TLP_RED)]
)
def test_the_operator_chooses_the_tlp(tlp: Tlp, marking: Any) -> None:
    facts = ReportFacts(tlp=tlp)
    bundle = stix2.parse(
        render_stix(build_report(detector_incident(), facts, generated=0.0)), allow_custom=False
    )
    (found,) = of_type(list(bundle.objects), "marking-definition")
    assert found.id == marking.id


def test_a_hostile_user_agent_is_quoted_into_a_valid_pattern() -> None:
    record = SignatureRecord(
        Signature((("user_agent", HOSTILE_AGENT + "\\'"),), 0.5, 0.0, "block", 0.0, 0.0), 1.0
    )
    facts = ReportFacts(signatures=(record,))
    bundle = stix2.parse(
        render_stix(build_report(detector_incident(), facts, generated=0.0)), allow_custom=False
    )
    (indicator,) = of_type(list(bundle.objects), "indicator")
    prefix = "[network-traffic:extensions.'http-request-ext'.request_header.'User-Agent' = "
    assert indicator.pattern.startswith(prefix + "'<script>alert(\\'x\\')")
    assert indicator.pattern.endswith("&amp;\\\\\\'']")  # the value's backslash and quote, escaped


def test_inexpressible_or_malformed_sources_are_left_out() -> None:
    facts = ReportFacts(
        top=TopSources(
            prefixes=(TopEntry("not-a-network", 10, 0.1),), asns=(TopEntry("Example Net", 5, 0.05),)
        ),
        signatures=(
            SignatureRecord(Signature((("header_order", "9f2c01ab"),), 0.9, 0.0, "block", 0.0, 0.0), 1.0),
            SignatureRecord(Signature((("path", "/a_b"),), 0.9, 0.0, "challenge", 0.0, 0.0), 1.0),
        ),
    )
    bundle = stix2.parse(
        render_stix(build_report(detector_incident(), facts, generated=0.0)), allow_custom=False
    )
    kinds = Counter(item.type for item in bundle.objects)
    assert kinds["indicator"] == 0 and kinds["observed-data"] == 0 and kinds["sighting"] == 0
    assert kinds["incident"] == 1 and kinds["report"] == 1
