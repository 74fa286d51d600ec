"""Golden files: each format of the report of a recorded incident, byte for byte.

The recorded incident (tests/fixtures/report/incident.json, `Incident.to_json()` of report_sample's
detector run) and its facts (facts.json) are inputs kept as files, so a change in the detector does not
move these outputs; a change in a renderer does, and shows up here as a diff to review. After a
deliberate change, rewrite the expected files and review the diff:
    SHIELDWALL_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_report_golden.py
(the recorded inputs are written only when missing)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from report_sample import detector_incident, sample_facts

from shieldwall.detector.incidents import Incident
from shieldwall.report.facts import ReportFacts
from shieldwall.report.html import render_html
from shieldwall.report.json_report import render_json
from shieldwall.report.markdown import render_markdown
from shieldwall.report.model import ReportData, build_report
from shieldwall.report.stix import render_stix

GOLDEN = Path(__file__).parent.parent / "fixtures" / "report"
UPDATE = os.environ.get("SHIELDWALL_UPDATE_GOLDEN") == "1"
RENDERERS: dict[str, Callable[[ReportData], str]] = {
    "report.html": render_html,
    "report.md": render_markdown,
    "report.json": render_json,
    "report.stix.json": render_stix,
}


def recorded() -> ReportData:
    incident_file, facts_file = GOLDEN / "incident.json", GOLDEN / "facts.json"
    if UPDATE and not incident_file.exists():
        incident = detector_incident()
        GOLDEN.mkdir(parents=True, exist_ok=True)
        incident_file.write_text(incident.to_json() + "\n", encoding="utf-8")
        facts_file.write_text(sample_facts(incident).to_json() + "\n", encoding="utf-8")
    incident = Incident.from_json(incident_file.read_text(encoding="utf-8"))
    facts = ReportFacts.from_json(facts_file.read_text(encoding="utf-8"))
    assert incident.closed is not None
    return build_report(incident, facts, generated=incident.closed + 600)


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_the_report_matches_its_golden_file(name: str) -> None:
    text = RENDERERS[name](recorded())
    path = GOLDEN / name
    if UPDATE:
        path.write_text(text, encoding="utf-8")
    expected = path.read_text(encoding="utf-8")
    assert text == expected, f"{name} changed; if on purpose, see this module's docstring"
