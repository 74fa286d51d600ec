"""The JSON report: parses back, carries its schema and version, has exactly the documented keys, ISO
times, and the same bytes for the same input."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from report_sample import detector_incident, hour_incident, sample_facts
from test_detector_detector import WALL0

from shieldwall.report import json_report
from shieldwall.report.charts import MAX_COLUMNS
from shieldwall.report.json_report import SCHEMA, SCHEMA_VERSION, SERIES_COLUMNS, render_json, report_document
from shieldwall.report.model import ReportData, build_report

ISO = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
TOP_KEYS = {
    "schema", "schema_version", "generated", "incident", "organisation", "summary", "impact", "timeline",
    "timeline_dropped", "actions", "sources", "signatures", "bans", "cert_answers", "series",
}  # fmt: skip


@pytest.fixture(scope="module")
def data() -> ReportData:
    incident = detector_incident()
    return build_report(incident, sample_facts(incident), generated=(incident.closed or 0.0) + 600)


@pytest.fixture(scope="module")
def document(data: ReportData) -> dict[str, Any]:
    return json.loads(render_json(data))


def test_it_parses_back_to_the_document(data: ReportData, document: dict[str, Any]) -> None:
    assert document == json.loads(json.dumps(report_document(data)))
    assert document["schema"] == SCHEMA == "shieldwall-incident-report"
    assert document["schema_version"] == SCHEMA_VERSION == 1


def test_the_keys_are_the_documented_ones(document: dict[str, Any]) -> None:
    assert set(document) == TOP_KEYS
    doc = json_report.__doc__ or ""

    def documented(key: str) -> bool:
        return re.search(rf"(?<![a-z_]){key}(?![a-z_])", doc) is not None

    for section in ("incident", "impact", "organisation"):
        for key in document[section]:
            assert documented(key), f"{section}.{key} is not documented"
    for listed in ("timeline", "actions", "signatures", "bans", "cert_answers"):
        for key in document[listed][0]:
            assert documented(key), f"{listed}[].{key} is not documented"
    for key in [*document["sources"]["prefixes"][0], *document["organisation"]["contact"], *TOP_KEYS]:
        assert documented(key), key


def test_figures_and_times(data: ReportData, document: dict[str, Any]) -> None:
    incident = document["incident"]
    assert (
        incident["id"] == data.incident_id and incident["status"] == "closed" and incident["tlp"] == "amber"
    )
    for key in ("started", "detected", "under_attack", "ended", "closed"):
        assert ISO.fullmatch(incident[key]), key
    assert incident["duration_seconds"] == 120.0
    assert incident["requests"] == data.requests and incident["mitigated"] == data.mitigated
    assert incident["peak_mode"] == "under_attack"
    assert set(incident["mode_seconds"]) == {"normal", "elevated", "under_attack"}
    assert document["impact"]["slowed_seconds"] == 4.0 and document["impact"]["success_rate"] == 0.991
    assert all(ISO.fullmatch(entry["at"]) for entry in document["timeline"])
    assert document["bans"][-1] == {
        "target": "198.51.100.0/24",
        "since": document["bans"][-1]["since"],
        "until": None,
        "source": "manual",
        "reason": "credential stuffing <again>",
        "level": 0,
    }
    signature = document["signatures"][0]
    assert signature["conditions"] == {"path": "/search", "user_agent": "curl/8.5.0"}
    assert signature["id"] == "sig-029f3aa7f0" and signature["last_seen"] is not None
    assert document["signatures"][2]["last_seen"] is None and document["signatures"][2]["requests"] is None
    assert [answer["key"] for answer in document["cert_answers"]][:3] == [
        "reporter",
        "contact",
        "organisation",
    ]
    assert len(document["summary"]) == 4


def test_the_series_is_bounded_and_labelled() -> None:
    data = build_report(hour_incident(), generated=WALL0 + 4000)
    series = json.loads(render_json(data))["series"]
    assert series["columns"] == list(SERIES_COLUMNS)
    assert 0 < len(series["points"]) <= MAX_COLUMNS
    assert all(len(point) == len(SERIES_COLUMNS) and ISO.fullmatch(point[0]) for point in series["points"])
    assert sum(point[1] for point in series["points"]) == sum(p.seconds for p in data.points)


def test_an_open_incident_has_nulls_not_guesses() -> None:
    incident = detector_incident()
    incident.closed = None
    incident_doc = json.loads(render_json(build_report(incident, generated=incident.opened + 30)))["incident"]
    assert incident_doc["status"] == "open"
    assert (
        incident_doc["ended"] is None
        and incident_doc["closed"] is None
        and incident_doc["duration_seconds"] is None
    )


def test_same_input_same_bytes(data: ReportData) -> None:
    text = render_json(data)
    assert render_json(data) == text
    assert text.endswith("}\n") and '\n  "bans": [' in text  # sorted keys, two-space indent
