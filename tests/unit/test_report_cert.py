"""Answers to a CERT's incident questions: every NCSC question answered from the facts when known,
a visible placeholder when not, honest about what a DDoS shield can know, and ready to paste."""

from __future__ import annotations

import re

import pytest
from report_sample import detector_incident, sample_facts

from shieldwall.detector.incidents import Incident
from shieldwall.report import cert_questions
from shieldwall.report.cert_questions import FILL_IN, cert_answers, cert_text
from shieldwall.report.facts import ReportFacts
from shieldwall.report.model import build_report

KEYS = [
    "reporter", "contact", "organisation", "summary", "timing", "affected", "impact", "actions", "indicators",
    "data", "informed", "next_steps", "other",
]  # fmt: skip


@pytest.fixture(scope="module")
def incident() -> Incident:
    return detector_incident()


def answers(incident: Incident, facts: ReportFacts | None = None) -> dict[str, str]:
    data = build_report(incident, facts, generated=(incident.closed or 0.0) + 600)
    return {item.key: item.answer for item in cert_answers(data)}


def test_the_source_is_cited() -> None:
    doc = cert_questions.__doc__ or ""
    assert "https://www.ncsc.gov.uk/articles/get-help-significant-cyber-incident-guidance" in doc
    assert "https://report.ncsc.gov.uk/" in doc


def test_every_question_is_answered_from_the_facts(incident: Incident) -> None:
    found = answers(incident, sample_facts(incident))
    assert list(found) == KEYS
    assert found["reporter"] == "Jane Doe, IT operations lead"
    assert found["contact"] == "Email: it-security@example.gov.uk\nPhone: +44 20 7946 0000"
    assert found["organisation"] == "Example Borough Council"
    assert "www.example.gov.uk received a flood of web requests" in found["summary"]
    assert "Started: 2024-06-10 06:18:20 UTC" in found["timing"]
    assert "Back to normal operation: 2024-06-10 06:21:50 UTC" in found["timing"]
    assert "www.example.gov.uk (web server 10.0.0.5:8080)" in found["affected"]
    assert "Is the incident ongoing? no." in found["impact"]
    assert "99.1% of the requests that reached the website were answered" in found["impact"]
    assert "Called the hosting provider to warn them (by Jane Doe)" in found["actions"]
    assert (
        "203.0.113.0/24 57%" in found["indicators"] and "AS64500 (EXAMPLE-TRANSIT) 79%" in found["indicators"]
    )
    assert found["next_steps"] == "Review the origin's capacity with the hosting provider."
    assert "TLP:AMBER" in found["other"]
    assert found["informed"].startswith(FILL_IN)  # the only thing the sample does not say


def test_unknown_facts_become_visible_placeholders(incident: Incident) -> None:
    found = answers(incident)
    for key in ("reporter", "organisation", "informed", "next_steps"):
        assert FILL_IN in found[key], key
    assert found["contact"].count(FILL_IN) == 2
    assert "The shield recorded no lists of sources" in found["indicators"]


def test_the_data_question_says_what_the_shield_can_and_cannot_know(incident: Incident) -> None:
    data_answer = answers(incident)["data"]
    assert data_answer.startswith("No data access is known.")
    assert "does not by itself read or change data" in data_answer
    assert "cannot rule out" in data_answer


def test_an_ongoing_incident_says_so(incident: Incident) -> None:
    still_open = Incident(incident.id, incident.opened, incident.series, timeline=incident.timeline[:3])
    found = answers(still_open)
    assert "Ended: no, the incident is ongoing" in found["timing"]
    assert "Is the incident ongoing? yes." in found["impact"]


def test_the_text_is_numbered_and_indented_for_pasting(incident: Incident) -> None:
    data = build_report(incident, sample_facts(incident), generated=0.0)
    text = cert_text(data)
    numbers = [int(n) for n in re.findall(r"^([0-9]+)\. ", text, flags=re.MULTILINE)]
    assert numbers == list(range(1, len(KEYS) + 1))
    body = [line for line in text.splitlines() if line and not re.match(r"[0-9]+\. ", line)]
    assert all(line.startswith("   ") for line in body)
    assert text.endswith("\n") and "\n\n\n" not in text
