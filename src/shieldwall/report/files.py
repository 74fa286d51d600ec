"""Where incidents are kept for reports: `server.state_dir`/incidents/.

    incidents/<ID>.json        the incident, exactly `Incident.to_json()` (detector/incidents.py);
                               required. Written when the incident closes (Detector.pop_closed), and
                               best also every few seconds while it is open, so that a report can be made
                               during an attack.
    incidents/<ID>.facts.json  optional: `ReportFacts.to_json()` (facts.py): the signatures, bans, top
                               sources and people's actions of that incident, as far as the writer knows.

<ID> is the incident's id ("INC-20240610-061821"): letters, digits, "-" and "_" only. Both files are
replaced whole with core.atomic_file.write_atomic (`save()` does it), so a report never reads half a
file. Reading never writes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from shieldwall.core.atomic_file import write_atomic
from shieldwall.detector.incidents import Incident
from shieldwall.report.facts import ReportFacts

INCIDENTS_DIR: Final = "incidents"
_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
_FACTS_SUFFIX: Final = ".facts.json"


class IncidentNotFound(LookupError):
    """No file for this incident id; `known` lists the ids there are, newest first."""

    def __init__(self, incident_id: str, directory: Path, known: list[str]) -> None:
        super().__init__(incident_id)
        self.incident_id = incident_id
        self.directory = directory
        self.known = known


class IncidentFileError(Exception):
    """An incident's file exists but cannot be read or parsed; the message names the file."""


def check_id(incident_id: str) -> str:
    """`incident_id` if it may name a file here; ValueError (saying what an id looks like) otherwise."""
    if not _ID.fullmatch(incident_id):
        raise ValueError("not an incident id; ids look like INC-20240610-061821")
    return incident_id


def incidents_dir(state_dir: Path) -> Path:
    return state_dir / INCIDENTS_DIR


def incident_path(state_dir: Path, incident_id: str) -> Path:
    return incidents_dir(state_dir) / f"{check_id(incident_id)}.json"


def facts_path(state_dir: Path, incident_id: str) -> Path:
    return incidents_dir(state_dir) / f"{check_id(incident_id)}{_FACTS_SUFFIX}"


def known_ids(state_dir: Path) -> list[str]:
    """The incident ids with a file, newest first (ids sort by their time); [] without a directory."""
    try:
        names = [path.name for path in incidents_dir(state_dir).iterdir()]
    except OSError:
        return []
    ids = [name.removesuffix(".json") for name in names if name.endswith(".json")]
    return sorted((name for name in ids if _ID.fullmatch(name)), reverse=True)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise IncidentFileError(f"cannot read {path}: {reason}") from None


def load(state_dir: Path, incident_id: str) -> tuple[Incident, ReportFacts | None]:
    """The incident and its facts (None without a facts file). Raises ValueError for a malformed id,
    IncidentNotFound, or IncidentFileError."""
    path = incident_path(state_dir, incident_id)
    if not path.is_file():
        raise IncidentNotFound(incident_id, incidents_dir(state_dir), known_ids(state_dir))
    try:
        incident = Incident.from_json(_read(path))
    except (ValueError, KeyError, TypeError) as exc:
        raise IncidentFileError(f"{path}: not an incident file ({type(exc).__name__}: {exc})") from None
    extra = facts_path(state_dir, incident_id)
    if not extra.is_file():
        return incident, None
    try:
        return incident, ReportFacts.from_json(_read(extra))
    except ValueError as exc:
        raise IncidentFileError(f"{extra}: {exc}") from None


def save(state_dir: Path, incident: Incident, facts: ReportFacts | None = None) -> Path:
    """Write an incident (and its facts) where reports look for them; returns the incident's path.
    Raises OSError."""
    directory = incidents_dir(state_dir)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = incident_path(state_dir, incident.id)
    write_atomic(path, incident.to_json().encode())
    if facts is not None:
        write_atomic(facts_path(state_dir, incident.id), facts.to_json().encode())
    return path
