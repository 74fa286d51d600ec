"""The incidents a drill's shield opened, and their reports in HTML and STIX, written with
shieldwall.report (the same renderer `shieldwall report` uses) beside the drill's other files."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from shieldwall.state.incident_store import IncidentStoreError, shared

REPORT_FORMATS: Final = ("html", "stix")


@dataclass(frozen=True)
class IncidentFiles:
    incident: str  # its id, in the shield's incidents database
    reports: tuple[Path, ...]  # HTML and STIX, when they could be made
    problem: str = ""  # why not, when they could not


def incident_ids(state_dir: Path) -> list[str]:
    """The ids of the incidents the shield stored in `state_dir`, oldest first ([] when it stored
    none, or its database cannot be read: the reports then say why)."""
    try:
        return [listing.id for listing in reversed(shared(state_dir).listings())]
    except IncidentStoreError:
        return []


def write_reports(state_dir: Path, out_dir: Path) -> list[IncidentFiles]:
    """Each incident in `state_dir`, with its HTML and STIX reports written into `out_dir`."""
    from shieldwall.report import store  # noqa: PLC0415 (the report renderers load only when used)
    from shieldwall.report.formats import SUFFIXES, render  # noqa: PLC0415
    from shieldwall.report.model import build_report  # noqa: PLC0415

    written = []
    for incident_id in incident_ids(state_dir):
        try:
            incident, facts = store.load(state_dir, incident_id)
            data = build_report(incident, facts, generated=time.time())
            out_dir.mkdir(parents=True, exist_ok=True)
            reports = []
            for fmt in REPORT_FORMATS:
                report = out_dir / f"{incident_id}{SUFFIXES[fmt]}"
                report.write_text(render(data, fmt), encoding="utf-8")
                reports.append(report)
        except (OSError, ValueError, ImportError, IncidentStoreError, store.IncidentNotFound) as exc:
            written.append(IncidentFiles(incident_id, (), f"{type(exc).__name__}: {exc}"))
            continue
        written.append(IncidentFiles(incident_id, tuple(reports)))
    return written
