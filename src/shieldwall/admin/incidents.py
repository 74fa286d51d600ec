"""/api/v1/incidents: the stored incidents (report/store.py), each as its document or as a report.

The open incident is answered from memory, fresher than the store (saved every few seconds); its report
is made from the store, with the facts saved with it. The list is read from the store's summary columns;
incidents are read and parsed, and reports rendered, in a thread: a long incident's HTML report takes a
moment and the control loop must keep ticking. The store's connection is shared with the loop (which
saves inline) under a lock, each use one short query."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Response
from fastapi import Path as PathParameter

from shieldwall.admin.context import ApiError, Context
from shieldwall.admin.models import INCIDENT_ID_PATTERN, IncidentSummary, errors
from shieldwall.detector.events import Mode
from shieldwall.detector.incidents import Incident
from shieldwall.report import store
from shieldwall.report.facts import ReportFacts, Tlp
from shieldwall.report.formats import MEDIA_TYPES, SUFFIXES, Format, render
from shieldwall.report.model import build_report
from shieldwall.state.incident_store import IncidentStoreError, Listing, shared

_ERRORS = errors(400, 401, 404, 503)
IncidentId = Annotated[
    str, PathParameter(pattern=INCIDENT_ID_PATTERN, description="e.g. INC-20240610-061821")
]


def _summaries(state_dir: Path, limit: int) -> list[IncidentSummary]:
    try:
        return [_summary(listing) for listing in shared(state_dir).listings(limit)]
    except IncidentStoreError as exc:
        raise ApiError(503, f"{exc}; the incidents cannot be listed") from None


def _summary(incident: Incident | Listing) -> IncidentSummary:
    """The open incident (from memory) or a stored one (its summary columns), listed alike."""
    return IncidentSummary(
        id=incident.id,
        opened=incident.opened,
        closed=incident.closed,
        peak_mode=Mode(incident.peak_mode),
        peak_rps=incident.peak_rps,
    )


def _load(state_dir: Path, incident_id: str) -> tuple[Incident, ReportFacts | None]:
    try:
        return store.load(state_dir, incident_id)
    except ValueError as exc:
        raise ApiError(400, f"{incident_id!r}: {exc}") from None
    except store.IncidentNotFound as missing:
        newest = ", ".join(missing.known[:5]) or "none"
        raise ApiError(
            404, f"no incident {incident_id}; GET /api/v1/incidents lists them (newest: {newest})"
        ) from None
    except IncidentStoreError as exc:
        raise ApiError(503, f"{exc}; the incident cannot be read") from None


def _report(state_dir: Path, incident_id: str, fmt: Format, tlp: Tlp | None) -> str:
    incident, stored = _load(state_dir, incident_id)
    facts = stored or ReportFacts()
    if tlp is not None:
        facts = replace(facts, tlp=tlp)
    return render(build_report(incident, facts, generated=time.time()), fmt)


def router() -> APIRouter:
    routes = APIRouter(tags=["incidents"])

    @routes.get("/incidents", responses=_ERRORS, summary="The incidents, newest first.")
    async def list_incidents(
        admin: Context, limit: Annotated[int, Query(ge=1, le=1000)] = 100
    ) -> list[IncidentSummary]:
        state_dir = admin.settings.server.state_dir
        listed = await asyncio.to_thread(_summaries, state_dir, limit)
        current = admin.control.detector.incident
        if current is not None:
            listed = [_summary(current), *(entry for entry in listed if entry.id != current.id)]
            listed.sort(key=lambda entry: entry.opened, reverse=True)
        return listed[:limit]

    @routes.get(
        "/incidents/{incident_id}",
        responses={**_ERRORS, 200: {"content": {"application/json": {}}}},
        response_class=Response,
        summary="One incident: its timeline and per-second series (its stored JSON).",
    )
    async def get_incident(admin: Context, incident_id: IncidentId) -> Response:
        current = admin.control.detector.incident
        if current is not None and current.id == incident_id:
            return Response(current.to_json(), media_type="application/json")
        incident, _ = await asyncio.to_thread(_load, admin.settings.server.state_dir, incident_id)
        return Response(incident.to_json(), media_type="application/json")

    @routes.get(
        "/incidents/{incident_id}/report",
        responses={**_ERRORS, 200: {"content": {media: {} for media in MEDIA_TYPES.values()}}},
        response_class=Response,
        summary="The incident's report: html (printable), md, json, or a STIX 2.1 bundle.",
    )
    async def get_report(
        admin: Context,
        incident_id: IncidentId,
        fmt: Annotated[Format, Query(alias="format")] = "html",
        tlp: Annotated[Tlp | None, Query(description="Traffic Light Protocol marking; default amber")] = None,
    ) -> Response:
        text = await asyncio.to_thread(_report, admin.settings.server.state_dir, incident_id, fmt, tlp)
        filename = f"{incident_id}{SUFFIXES[fmt]}"
        return Response(
            text,
            media_type=MEDIA_TYPES[fmt],
            headers={"Content-Disposition": f'inline; filename="{filename}"'},
        )

    return routes
