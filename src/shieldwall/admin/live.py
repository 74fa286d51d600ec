"""What is happening now: the status snapshot (control/status.py has its shape), the same once a second
as Server-Sent Events, and the lookup of a visitor's reference ID."""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator
from typing import Any, Final

from fastapi import APIRouter, Depends
from fastapi.responses import StreamingResponse

from shieldwall.admin.context import AdminContext, ApiError, Context, require_token, require_token_or_query
from shieldwall.admin.models import LookupOut, errors
from shieldwall.control.loop import ANSWERS_KEPT

KEEPALIVE: Final = 15.0  # seconds without a new snapshot before a comment line keeps proxies from closing


def status_view(admin: AdminContext) -> dict[str, Any]:
    """The control status snapshot, with each signature's `pinned` flag added (the dashboard's pin
    button), and any non-finite number as null: JSON has no NaN or Infinity."""
    snapshot = admin.control.status.snapshot
    # With [cluster] the node applies the cluster detector's signatures (admin/operator.py).
    sets = [loop.signatures for loop in (admin.control, admin.operator.cluster) if loop is not None]
    view = dict(snapshot)
    if "signatures" in snapshot:
        view["signatures"] = [
            {**entry, "pinned": any(sset.is_pinned(str(entry.get("id"))) for sset in sets)}
            for entry in snapshot["signatures"]
        ]
    finite: dict[str, Any] = _finite(view)
    return finite


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


async def _events(admin: AdminContext) -> AsyncIterator[str]:
    last: object = None
    quiet_since = time.monotonic()
    while not admin.closing:
        snapshot = admin.control.status.snapshot
        now = time.monotonic()
        if snapshot is not last:  # the control loop builds a new dict each second
            last, quiet_since = snapshot, now
            yield f"event: status\ndata: {json.dumps(status_view(admin), separators=(',', ':'))}\n\n"
        elif now - quiet_since >= KEEPALIVE:
            quiet_since = now
            yield ": still here\n\n"
        await asyncio.sleep(admin.stream_poll)


_READ = errors(401)


def router() -> APIRouter:
    routes = APIRouter(tags=["now"])

    @routes.get(
        "/status",
        dependencies=[Depends(require_token)],
        responses=_READ,
        summary="The control status snapshot: mode, rates, origin, top sources, signatures, history.",
    )
    async def status(admin: Context) -> dict[str, Any]:
        return status_view(admin)

    @routes.get(
        "/stream",
        dependencies=[Depends(require_token_or_query)],
        responses={**_READ, 200: {"content": {"text/event-stream": {}}}},
        response_class=StreamingResponse,
        summary="The status snapshot as Server-Sent Events (`event: status`), once a second.",
    )
    async def stream(admin: Context) -> StreamingResponse:
        return StreamingResponse(
            _events(admin),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @routes.get(
        "/lookup/{ref}",
        dependencies=[Depends(require_token)],
        responses=errors(401, 404),
        summary="What the shield answered to the request with this reference ID, and why.",
    )
    async def lookup(admin: Context, ref: str) -> LookupOut:
        answer = admin.control.lookup(ref.strip().upper())
        if answer is None:
            raise ApiError(
                404,
                f"reference ID {ref} not seen recently: the shield keeps the last {ANSWERS_KEPT:,} it gave "
                "(hours when calm, a few minutes in a large flood), since its control process started; "
                "check the ID (SW- and 12 hex digits), or search the access log for it",
            )
        return LookupOut.of(answer)

    return routes
