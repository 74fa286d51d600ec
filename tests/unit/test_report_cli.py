"""`shieldwall report INCIDENT`, driven through click's CliRunner against the incidents database in a
temporary state_dir: each format written to a file or stdout, facts and TLP laid over, and every bad
input (a damaged, locked or newer database too) refused with exit 2 and a message saying what is wrong."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import stix2
from click.testing import CliRunner, Result
from report_sample import detector_incident, sample_facts

from shieldwall.cli.report import report
from shieldwall.detector.incidents import Incident
from shieldwall.report import store
from shieldwall.report.facts import ReportFacts
from shieldwall.report.formats import FORMATS, MEDIA_TYPES, SUFFIXES, render
from shieldwall.report.model import build_report
from shieldwall.state import incident_store
from shieldwall.state.incident_store import Record

NOW = 1_700_000_000.0


@pytest.fixture(scope="module")
def incident() -> Incident:
    return detector_incident()


@pytest.fixture
def config(tmp_path: Path, incident: Incident) -> Iterator[Path]:
    path = tmp_path / "shieldwall.toml"
    path.write_text(f'[server]\nstate_dir = "{tmp_path / "state"}"\n')
    store.save(tmp_path / "state", incident, sample_facts(incident), now=NOW)
    yield path
    incident_store.shared(tmp_path / "state").close()


def invoke(config: Path, *args: str) -> Result:
    return CliRunner().invoke(report, [*args, "--config", str(config)], catch_exceptions=False)


@pytest.mark.parametrize(
    ("fmt", "start"), [("html", "<!DOCTYPE html>"), ("md", "# Incident report"), ("json", "{")]
)
def test_each_format_is_written_to_a_file(config: Path, incident: Incident, fmt: str, start: str) -> None:
    output = config.parent / f"report.{fmt}"
    result = invoke(config, incident.id, "--format", fmt, "--output", str(output))
    assert result.exit_code == 0, result.stderr
    text = output.read_text(encoding="utf-8")
    assert text.startswith(start) and "www.example.gov.uk" in text
    assert result.stdout == ""
    assert result.stderr == f"wrote {output} ({len(text.encode()):,} bytes)\n"


def test_stix_to_stdout_parses(config: Path, incident: Incident) -> None:
    result = invoke(config, incident.id, "--format", "stix", "--tlp", "green")
    assert result.exit_code == 0, result.stderr
    bundle = stix2.parse(result.stdout, allow_custom=False)
    assert stix2.TLP_GREEN.id in {item.id for item in bundle.objects}


def test_html_is_the_default(config: Path, incident: Incident) -> None:
    result = invoke(config, incident.id)
    assert result.exit_code == 0 and result.stdout.startswith("<!DOCTYPE html>")


def test_a_facts_file_lays_over_the_stored_facts(config: Path, incident: Incident) -> None:
    mine = config.parent / "org.json"
    mine.write_text(ReportFacts(organisation="Other Council", informed="the NCSC").to_json())
    result = invoke(config, incident.id, "--format", "json", "--facts", str(mine))
    document = json.loads(result.stdout)
    assert document["organisation"]["name"] == "Other Council"
    assert document["organisation"]["site"] == "www.example.gov.uk"  # from the stored facts
    assert {a["key"]: a["answer"] for a in document["cert_answers"]}["informed"] == "the NCSC"


def test_an_incident_without_facts_still_reports(tmp_path: Path, incident: Incident) -> None:
    config = tmp_path / "shieldwall.toml"
    config.write_text(f'[server]\nstate_dir = "{tmp_path / "state"}"\n')
    store.save(tmp_path / "state", incident, now=NOW)
    result = invoke(config, incident.id, "--format", "md")
    incident_store.shared(tmp_path / "state").close()
    assert result.exit_code == 0 and "# Incident report: the website" in result.stdout


def test_an_unknown_incident_exits_2_naming_the_ones_there_are(config: Path, incident: Incident) -> None:
    result = invoke(config, "INC-20000101-000000")
    assert result.exit_code == 2 and result.stdout == ""
    database = config.parent / "state" / "incidents.sqlite3"
    assert (
        result.stderr
        == f"shieldwall: no incident INC-20000101-000000 in {database} (newest there: {incident.id})\n"
    )


def test_no_incidents_at_all(tmp_path: Path) -> None:
    config = tmp_path / "shieldwall.toml"
    config.write_text(f'[server]\nstate_dir = "{tmp_path / "nothing"}"\n')
    result = invoke(config, "INC-20000101-000000")
    assert result.exit_code == 2 and result.stderr.endswith("(newest there: none)\n")
    assert not (tmp_path / "nothing").exists()  # a reader creates no database


@pytest.mark.parametrize("bad", ["../etc/passwd", ".hidden", "INC-1.facts", "a/b", ""])
def test_a_malformed_id_exits_2(config: Path, bad: str) -> None:
    result = invoke(config, bad)
    assert result.exit_code == 2
    assert result.stderr == f"shieldwall: {bad!r}: not an incident id; ids look like INC-20240610-061821\n"


def test_a_bad_format_exits_2(config: Path, incident: Incident) -> None:
    result = invoke(config, incident.id, "--format", "pdf")
    assert result.exit_code == 2
    assert "Invalid value for '--format'" in result.stderr and "'html', 'md', 'json', 'stix'" in result.stderr


def overwrite(config: Path, incident: Incident, **changes: str) -> Path:
    """Store a damaged row for `incident`, as a faulty writer might; returns the database's path."""
    saved = store.load(config.parent / "state", incident.id)[0]
    row = Record(saved.id, saved.opened, saved.closed, saved.peak_mode.value, saved.peak_rps, **changes)
    database = incident_store.shared(config.parent / "state")
    database.save(row, NOW)
    return database.path


def test_a_damaged_incident_exits_2(config: Path, incident: Incident) -> None:
    path = overwrite(config, incident, document='{"id": "x"}')
    result = invoke(config, incident.id)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"shieldwall: {path}: incident {incident.id} is damaged (KeyError")


def test_damaged_facts_exit_2(config: Path, incident: Incident) -> None:
    path = overwrite(
        config,
        incident,
        document=incident.to_json(),
        facts='{"format": "shieldwall-report-facts/1", "tlp": "blue"}',
    )
    result = invoke(config, incident.id)
    assert result.exit_code == 2
    assert result.stderr == (
        f"shieldwall: {path}: the facts of incident {incident.id}: "
        "tlp: must be one of clear, green, amber, red\n"
    )


def test_a_damaged_database_exits_2_saying_what_to_do(tmp_path: Path) -> None:
    config = tmp_path / "shieldwall.toml"
    config.write_text(f'[server]\nstate_dir = "{tmp_path}"\n')
    (tmp_path / "incidents.sqlite3").write_bytes(b"\0garbage" * 1000)
    result = invoke(config, "INC-20000101-000000")
    incident_store.shared(tmp_path).close()
    assert result.exit_code == 2
    assert result.stderr == (
        f"shieldwall: {tmp_path / 'incidents.sqlite3'}: file is not a database (the file is damaged: "
        "move it aside (shieldwall starts an empty one) and keep it to analyse)\n"
    )


def test_a_database_from_a_newer_shieldwall_exits_2(config: Path, incident: Incident) -> None:
    database = incident_store.shared(config.parent / "state")
    database.close()
    raw = sqlite3.connect(database.path)
    raw.execute("PRAGMA user_version = 99")
    raw.close()
    result = invoke(config, incident.id)
    assert result.exit_code == 2
    assert result.stderr.startswith(
        f"shieldwall: {database.path} was written by a newer shieldwall (schema 99;"
    )


def test_a_bad_facts_option_exits_2(config: Path, incident: Incident) -> None:
    missing = config.parent / "missing.json"
    result = invoke(config, incident.id, "--facts", str(missing))
    assert result.exit_code == 2
    assert result.stderr == f"shieldwall: cannot read --facts {missing}: No such file or directory\n"


def test_an_unwritable_output_exits_2(config: Path, incident: Incident) -> None:
    output = config.parent / "no-such-dir" / "report.html"
    result = invoke(config, incident.id, "--output", str(output))
    assert result.exit_code == 2
    assert result.stderr == f"shieldwall: cannot write {output}: No such file or directory\n"


def test_every_format_has_a_media_type_and_suffix(incident: Incident) -> None:
    data = build_report(incident, generated=0.0)
    assert set(MEDIA_TYPES) == set(SUFFIXES) == set(FORMATS) == {"html", "md", "json", "stix"}
    assert render(data, "html").startswith("<!DOCTYPE html>")
    assert render(data, "md").startswith("# Incident report")
    assert json.loads(render(data, "json"))["schema_version"] == 1
    assert json.loads(render(data, "stix"))["type"] == "bundle"
