"""What every admin route works with, made once per app: the control loop, the settings, the operator's
actions, the token, the metrics' totals; and how routes say what went wrong.

Errors are one JSON shape everywhere, `{"error": "what is wrong; what to do"}`, with 400 (a bad request),
401 (no or a wrong token), 404 (no such thing), or 503 (what was asked cannot be done here now)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CollectorRegistry

from shieldwall.admin.auth import TokenFile
from shieldwall.admin.metrics import Totals
from shieldwall.admin.operator import Operator
from shieldwall.config.schema import Settings
from shieldwall.control.loop import ControlLoop

BY = "admin API"  # who the incident's facts and the logs say acted: the token is shared, not personal


class ApiError(Exception):
    """Answered as {"error": message} with `status`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(slots=True)
class AdminContext:
    control: ControlLoop
    settings: Settings
    operator: Operator
    tokens: TokenFile
    totals: Totals
    registry: CollectorRegistry
    stream_poll: float = 0.25  # seconds between looks at the snapshot for /stream
    closing: bool = field(default=False)  # set when the server stops: open streams end


def context(request: Request) -> AdminContext:
    admin: AdminContext = request.app.state.admin
    return admin


Context = Annotated[AdminContext, Depends(context)]

_bearer = HTTPBearer(auto_error=False, description="the token in server.state_dir/admin/token")
_UNAUTHORIZED = (
    "no valid admin token; send 'Authorization: Bearer TOKEN' with the token that "
    "`shieldwall admin url` prints (or `shieldwall admin token --rotate` makes)"
)


def _check(admin: AdminContext, presented: str | None) -> None:
    if not admin.tokens.matches(presented):
        raise ApiError(401, _UNAUTHORIZED)


def require_token(
    admin: Context, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """Every /api/v1 route depends on this."""
    _check(admin, credentials.credentials if credentials is not None else None)


def require_token_or_query(
    admin: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    token: Annotated[
        str | None, Query(description="the token, for EventSource, which cannot send headers")
    ] = None,
) -> None:
    """For /stream: the header, or `?token=`."""
    _check(admin, credentials.credentials if credentials is not None else token)


def require_token_for_metrics(request: Request, admin: Context) -> None:
    """/metrics: open unless `[admin] metrics_need_token`. The header is read here rather than through
    the bearer scheme, so the OpenAPI document does not say the token is always needed."""
    if admin.settings.admin.metrics_need_token:
        scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
        _check(admin, presented.strip() if scheme.lower() == "bearer" else None)
