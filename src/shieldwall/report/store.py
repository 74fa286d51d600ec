"""Where reports find incidents: the incidents database in `server.state_dir` (state/incident_store.py
says how it is kept), as detector `Incident`s and their `ReportFacts`.

Each incident is stored as `Incident.to_json()` with, when its writer knew them, its facts
(`ReportFacts.to_json()`): the signatures, bans, top sources and people's actions of that incident.
The control process saves the open incident every few seconds, so a report can be made during an
attack, and once more when it closes. Reading never creates the database.

An incident id ("INC-20240610-061821") is letters, digits, "-" and "_" only (`check_id`): the same
rule the admin API's routes apply. Listing incidents (`listings`) and bounded retention (`prune`) need
no parsing and are the store's own: `shieldwall.state.incident_store.shared(state_dir)`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Final

from shieldwall.detector.incidents import Incident
from shieldwall.report.facts import ReportFacts
from shieldwall.state.incident_store import IncidentStoreError, Record, shared

_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,99}")
_KNOWN_SHOWN: Final = 10


class IncidentNotFound(LookupError):
    """No incident with this id; `known` lists the newest ids there are (a few), newest first."""

    def __init__(self, incident_id: str, database: Path, known: list[str]) -> None:
        super().__init__(incident_id)
        self.incident_id = incident_id
        self.database = database
        self.known = known


def check_id(incident_id: str) -> str:
    """`incident_id` if it may name an incident; ValueError (saying what an id looks like) otherwise."""
    if not _ID.fullmatch(incident_id):
        raise ValueError("not an incident id; ids look like INC-20240610-061821")
    return incident_id


def load(state_dir: Path, incident_id: str) -> tuple[Incident, ReportFacts | None]:
    """The incident and its facts (None when none were saved). Raises ValueError for a malformed id,
    IncidentNotFound, or IncidentStoreError (also for a stored incident that does not parse)."""
    store = shared(state_dir)
    record = store.get(check_id(incident_id))
    if record is None:
        known = [listing.id for listing in store.listings(_KNOWN_SHOWN)]
        raise IncidentNotFound(incident_id, store.path, known)
    try:
        incident = Incident.from_json(record.document)
    except (ValueError, KeyError, TypeError) as exc:
        raise IncidentStoreError(
            f"{store.path}: incident {incident_id} is damaged ({type(exc).__name__}: {exc})"
        ) from None
    if record.facts is None:
        return incident, None
    try:
        return incident, ReportFacts.from_json(record.facts)
    except ValueError as exc:
        raise IncidentStoreError(f"{store.path}: the facts of incident {incident_id}: {exc}") from None


def save(state_dir: Path, incident: Incident, facts: ReportFacts | None = None, *, now: float) -> None:
    """Store the incident, and its facts (when None, facts saved before are kept); `now` is the wall
    clock. Raises IncidentStoreError."""
    record = Record(
        id=check_id(incident.id),
        opened=incident.opened,
        closed=incident.closed,
        peak_mode=incident.peak_mode.value,
        peak_rps=incident.peak_rps,
        document=incident.to_json(),
        facts=None if facts is None else facts.to_json(),
    )
    shared(state_dir).save(record, now)
