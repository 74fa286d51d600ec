"""`shieldwall report INCIDENT`: an incident's report as HTML, Markdown, JSON or a STIX 2.1 bundle, from
the incidents database in `server.state_dir` (report/store.py), read while the shield runs.

Exit codes: 0 written; 2 a bad command line, configuration, incident id or facts file, an incident
that does not exist or cannot be read (a damaged or locked database too), or an output file that
cannot be written."""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Final, NoReturn

import click

from shieldwall.cli.options import CONTEXT, config_option, load_settings
from shieldwall.report import store
from shieldwall.report.facts import TLPS, ReportFacts, Tlp
from shieldwall.report.formats import FORMATS, Format, render
from shieldwall.report.model import build_report
from shieldwall.state.incident_store import IncidentStoreError

EXIT_BAD_INPUT: Final = 2


def _fail(message: str) -> NoReturn:
    click.echo(f"shieldwall: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def _extra_facts(path: Path | None) -> ReportFacts | None:
    if path is None:
        return None
    try:
        return ReportFacts.from_json(path.read_text(encoding="utf-8"))
    except OSError as exc:
        _fail(f"cannot read --facts {path}: {exc.strerror or exc}")
    except (ValueError, UnicodeDecodeError) as exc:
        _fail(f"--facts {path}: {exc}")


@click.command(
    "report", context_settings=CONTEXT, short_help="Write an incident's report (HTML, md, JSON, STIX)."
)
@click.argument("incident")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    default="html",
    show_default=True,
    help="html: to read or print to PDF; md: for chat and email; json: for ticketing; stix: STIX 2.1 bundle.",
)
@click.option(
    "--output",
    "-o",
    metavar="FILE",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the report here. Default: standard output.",
)
@click.option(
    "--facts",
    "facts_file",
    metavar="FILE",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A report facts JSON file (organisation, contact, site...) laid over the incident's own facts.",
)
@click.option("--tlp", type=click.Choice(TLPS), help="Traffic Light Protocol marking. Default: amber.")
@config_option
def report(
    *,
    incident: str,
    fmt: Format,
    output: Path | None,
    facts_file: Path | None,
    tlp: Tlp | None,
    config_path: Path | None,
) -> None:
    """Write the report of INCIDENT (an id such as INC-20240610-061821; an unknown id lists the newest
    ones): summary, charts, timeline, top sources, signatures, actions, impact on visitors, and
    answers to a CERT's incident questions.

    \b
    shieldwall report INC-20240610-061821 --config /etc/shieldwall/shieldwall.toml -o report.html
    shieldwall report INC-20240610-061821 --format stix --tlp green --facts org.json -o bundle.json
    """
    state_dir = load_settings(config_path).server.state_dir
    try:
        incident_record, stored = store.load(state_dir, incident)
    except ValueError as exc:
        _fail(f"{incident!r}: {exc}")
    except store.IncidentNotFound as missing:
        known = ", ".join(missing.known[:5]) if missing.known else "none"
        _fail(f"no incident {incident} in {missing.database} (newest there: {known})")
    except IncidentStoreError as exc:
        _fail(str(exc))
    facts = stored or ReportFacts()
    extra = _extra_facts(facts_file)
    if extra is not None:
        facts = facts.merged(extra)
    if tlp is not None:
        facts = replace(facts, tlp=tlp)
    text = render(build_report(incident_record, facts, generated=time.time()), fmt)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot write {output}: {exc.strerror or exc}")
    click.echo(f"wrote {output} ({len(text.encode()):,} bytes)", err=True)
