"""The incidents a drill's shield opened, and their reports in HTML and STIX, written with
shieldwall.report (the same renderer `shieldwall report` uses) beside the drill's other files."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

_INCIDENT_FILE: Final = re.compile(r"INC-[A-Za-z0-9_-]+\.json")
REPORT_FORMATS: Final = ("html", "stix")


@dataclass(frozen=True)
class IncidentFiles:
    incident: Path  # the control process's JSON
    reports: tuple[Path, ...]  # HTML and STIX, when they could be made
    problem: str = ""  # why not, when they could not


def incident_paths(state_dir: Path) -> list[Path]:
    """The incidents' own JSON files (not the facts or reports beside them), oldest first."""
    directory = state_dir / "incidents"
    if not directory.is_dir():
        return []
    return sorted(path for path in directory.iterdir() if _INCIDENT_FILE.fullmatch(path.name))


def write_reports(state_dir: Path, out_dir: Path) -> list[IncidentFiles]:
    """Each incident in `state_dir`, with its HTML and STIX reports written into `out_dir`."""
    from shieldwall.report import files  # noqa: PLC0415 (the report renderers load only when used)
    from shieldwall.report.formats import SUFFIXES, render  # noqa: PLC0415
    from shieldwall.report.model import build_report  # noqa: PLC0415

    written = []
    for path in incident_paths(state_dir):
        incident_id = path.name.removesuffix(".json")
        try:
            incident, facts = files.load(state_dir, incident_id)
            data = build_report(incident, facts, generated=time.time())
            out_dir.mkdir(parents=True, exist_ok=True)
            reports = []
            for fmt in REPORT_FORMATS:
                report = out_dir / f"{incident_id}{SUFFIXES[fmt]}"
                report.write_text(render(data, fmt), encoding="utf-8")
                reports.append(report)
        except (OSError, ValueError, ImportError, files.IncidentFileError, files.IncidentNotFound) as exc:
            written.append(IncidentFiles(path, (), f"{type(exc).__name__}: {exc}"))
            continue
        written.append(IncidentFiles(path, tuple(reports)))
    return written
