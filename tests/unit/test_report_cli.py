"""`shieldwall report INCIDENT`, driven through click's CliRunner against incident files in a temporary
state_dir: each format written to a file or stdout, facts and TLP laid over, and every bad input
refused with exit 2 and a message saying what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import stix2
from click.testing import CliRunner, Result
from report_sample import detector_incident, sample_facts

from shieldwall.cli.report import report
from shieldwall.detector.incidents import Incident
from shieldwall.report import files
from shieldwall.report.facts import ReportFacts
from shieldwall.report.formats import FORMATS, MEDIA_TYPES, SUFFIXES, render
from shieldwall.report.model import build_report


@pytest.fixture(scope="module")
def incident() -> Incident:
    return detector_incident()


@pytest.fixture
def config(tmp_path: Path, incident: Incident) -> Path:
    path = tmp_path / "shieldwall.toml"
    path.write_text(f'[server]\nstate_dir = "{tmp_path / "state"}"\n')
    files.save(tmp_path / "state", incident, sample_facts(incident))
    return path


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
    files.save(tmp_path / "state", incident)
    result = invoke(config, incident.id, "--format", "md")
    assert result.exit_code == 0 and "# Incident report: the website" in result.stdout


def test_an_unknown_incident_exits_2_naming_the_ones_there_are(config: Path, incident: Incident) -> None:
    result = invoke(config, "INC-20000101-000000")
    assert result.exit_code == 2 and result.stdout == ""
    directory = config.parent / "state" / "incidents"
    assert (
        result.stderr
        == f"shieldwall: no incident INC-20000101-000000 in {directory} (newest there: {incident.id})\n"
    )


def test_no_incidents_at_all(tmp_path: Path) -> None:
    config = tmp_path / "shieldwall.toml"
    config.write_text(f'[server]\nstate_dir = "{tmp_path / "nothing"}"\n')
    result = invoke(config, "INC-20000101-000000")
    assert result.exit_code == 2 and result.stderr.endswith("(newest there: none)\n")


@pytest.mark.parametrize("bad", ["../etc/passwd", ".hidden", "INC-1.facts", "a/b", ""])
def test_a_malformed_id_exits_2(config: Path, bad: str) -> None:
    result = invoke(config, bad)
    assert result.exit_code == 2
    assert result.stderr == f"shieldwall: {bad!r}: not an incident id; ids look like INC-20240610-061821\n"


def test_a_bad_format_exits_2(config: Path, incident: Incident) -> None:
    result = invoke(config, incident.id, "--format", "pdf")
    assert result.exit_code == 2
    assert "Invalid value for '--format'" in result.stderr and "'html', 'md', 'json', 'stix'" in result.stderr


def test_a_corrupt_incident_file_exits_2(config: Path, incident: Incident) -> None:
    path = files.incident_path(config.parent / "state", incident.id)
    path.write_text('{"id": "x"}')
    result = invoke(config, incident.id)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"shieldwall: {path}: not an incident file (KeyError")


def test_a_corrupt_facts_file_exits_2(config: Path, incident: Incident) -> None:
    path = files.facts_path(config.parent / "state", incident.id)
    path.write_text('{"format": "shieldwall-report-facts/1", "tlp": "blue"}')
    result = invoke(config, incident.id)
    assert result.exit_code == 2
    assert result.stderr == f"shieldwall: {path}: tlp: must be one of clear, green, amber, red\n"


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


def test_files_list_newest_first_and_ignore_facts(tmp_path: Path, incident: Incident) -> None:
    files.save(tmp_path, incident, ReportFacts())
    older = Incident("INC-20200101-000000", 0.0, incident.series)
    files.save(tmp_path, older)
    assert files.known_ids(tmp_path) == [incident.id, "INC-20200101-000000"]
    loaded, facts = files.load(tmp_path, incident.id)
    assert loaded == incident and facts == ReportFacts()
    assert files.load(tmp_path, older.id)[1] is None


def test_every_format_has_a_media_type_and_suffix(incident: Incident) -> None:
    data = build_report(incident, generated=0.0)
    assert set(MEDIA_TYPES) == set(SUFFIXES) == set(FORMATS) == {"html", "md", "json", "stix"}
    assert render(data, "html").startswith("<!DOCTYPE html>")
    assert render(data, "md").startswith("# Incident report")
    assert json.loads(render(data, "json"))["schema_version"] == 1
    assert json.loads(render(data, "stix"))["type"] == "bundle"
