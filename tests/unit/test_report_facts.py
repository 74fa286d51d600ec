"""Report facts: the JSON file beside an incident round-trips, a bad one is refused naming the field,
an operator's file lays over the stored facts, and heavy-hitter summaries become top entries."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from report_sample import detector_incident, sample_facts

from shieldwall.detector.signatures import Signature
from shieldwall.detector.sketches import Summary
from shieldwall.report.facts import (
    FACTS_FORMAT,
    Contact,
    ReportFacts,
    SignatureRecord,
    TopEntry,
    TopSources,
    top_entries,
)


@pytest.fixture(scope="module")
def facts() -> ReportFacts:
    return sample_facts(detector_incident())


def test_the_sample_facts_round_trip(facts: ReportFacts) -> None:
    text = facts.to_json()
    assert json.loads(text)["format"] == FACTS_FORMAT
    assert ReportFacts.from_json(text) == facts


def test_a_missing_key_is_its_default() -> None:
    assert ReportFacts.from_json(json.dumps({"format": FACTS_FORMAT})) == ReportFacts()
    only = ReportFacts.from_json(json.dumps({"format": FACTS_FORMAT, "contact": {"email": "a@b.example"}}))
    assert only == ReportFacts(contact=Contact(email="a@b.example"))


@given(
    organisation=st.text(max_size=40),
    agent=st.text(min_size=1, max_size=60),
    share=st.floats(min_value=0, max_value=1),
    requests=st.integers(min_value=0, max_value=10**12),
)
def test_any_text_round_trips(organisation: str, agent: str, share: float, requests: int) -> None:
    facts = ReportFacts(
        organisation=organisation,
        top=TopSources(user_agents=(TopEntry(agent, requests, share, organisation),)),
        signatures=(
            SignatureRecord(Signature((("user_agent", agent),), share, 0.0, "block", 0.0, 0.0), 1.0),
        ),
    )
    assert ReportFacts.from_json(facts.to_json()) == facts


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"format": "other/1"}, 'not a report facts file: "format" must be "shieldwall-report-facts/1"'),
        ({"tlp": "purple"}, "tlp: must be one of clear, green, amber, red"),
        ({"latency_slo": 0}, "latency_slo: must be > 0"),
        ({"contact": {"name": 7}}, "contact.name: must be a string"),
        ({"top": {"prefixes": [{"value": "x", "share": 2}]}}, "top.prefixes[0].share: must be a fraction"),
        (
            {"signatures": [{"conditions": [["path"]]}]},
            "signatures[0].conditions[0]: must be [feature name, value]",
        ),
        (
            {
                "signatures": [
                    {
                        "conditions": [["colour", "red"]],
                        "action": "block",
                        "coverage": 1,
                        "collateral": 0,
                        "first_seen": 1,
                    }
                ]
            },
            "signatures[0].conditions: conditions need distinct features",
        ),
        ({"signatures": [{"conditions": [], "action": "ban"}]}, 'signatures[0].action: must be "block" or'),
        ({"bans": [{"target": "x"}]}, "bans[0]: "),
        ({"actions": [{"at": "yesterday"}]}, "actions[0].at: must be a number"),
        ({"impact": {"challenges_issued": -1}}, "impact.challenges_issued: must be a whole number >= 0"),
    ],
)
def test_a_bad_file_is_refused_naming_the_field(document: dict[str, object], message: str) -> None:
    document = {"format": FACTS_FORMAT, **document}
    with pytest.raises(
        ValueError, match="^" + message.replace("[", r"\[").replace("]", r"\]").replace(".", r"\.")
    ):
        ReportFacts.from_json(json.dumps(document))


def test_not_json_is_refused() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        ReportFacts.from_json("{")


def test_an_operators_file_lays_over_the_stored_facts(facts: ReportFacts) -> None:
    mine = ReportFacts(organisation="Other Org", tlp="green", informed="the NCSC")
    merged = facts.merged(mine)
    assert (merged.organisation, merged.tlp, merged.informed) == ("Other Org", "green", "the NCSC")
    assert merged.signatures == facts.signatures and merged.contact == facts.contact
    assert facts.merged(ReportFacts()) == facts


def test_a_signature_record_keeps_the_miners_id_and_words() -> None:
    signature = Signature((("user_agent", "curl/8"), ("path", "/search")), 0.9, 0.0, "block", 5.0, 9.0)
    record = SignatureRecord(signature, 1_718_000_000.0)
    assert record.id == signature.id and record.description == signature.describe()
    assert record.signature.conditions == (("path", "/search"), ("user_agent", "curl/8"))


def test_top_entries_from_a_heavy_hitter_summary() -> None:
    summary = Summary(
        (("203.0.113.0/24", 600, 0), ("198.51.100.0/24", 300, 2), ("192.0.2.0/24", 50, 2)), 2, 1000
    )
    assert top_entries(summary, limit=2) == (
        TopEntry("203.0.113.0/24", 600, 0.6),
        TopEntry("198.51.100.0/24", 300, 0.3),
    )
    assert top_entries(summary, limit=1, total=2000) == (TopEntry("203.0.113.0/24", 600, 0.3),)
    assert top_entries(Summary((), 0, 0)) == ()
