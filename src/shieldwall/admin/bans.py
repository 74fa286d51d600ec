"""/api/v1/bans: list, add and remove bans, as `shieldwall bans` does (state/manual_bans.py); workers
apply a change within a second."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Path
from starlette.convertors import Convertor, register_url_convertor

from shieldwall.admin.context import BY, ApiError, Context
from shieldwall.admin.models import BanAdded, BanIn, BanOut, Lifted, errors
from shieldwall.limiter.bans import ban_target
from shieldwall.state.ban_store import StateDirError

log = logging.getLogger("shieldwall.admin")

_ERRORS = errors(400, 401, 503)


class _Target(Convertor[str]):
    """The rest of the path, slashes and line breaks included: Starlette's `path` convertor is `.*`,
    which stops at a line break, so a target holding one matched no route and was answered 404 instead
    of the 400 that says what is wrong with it (found by the schemathesis test)."""

    regex = "(?s:.*)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("target", _Target())


def router() -> APIRouter:
    routes = APIRouter(tags=["bans"])

    @routes.get("/bans", responses=_ERRORS, summary="The bans in force, newest first.")
    async def list_bans(admin: Context) -> list[BanOut]:
        try:
            bans, problems = await admin.operator.bans()
        except StateDirError as exc:
            raise ApiError(503, str(exc)) from None
        for problem in problems:
            log.warning("ban store: %s", problem)
        return [BanOut.of(ban) for ban in bans]

    @routes.post(
        "/bans",
        status_code=201,
        responses=_ERRORS,
        summary="Ban one address or one client prefix; it replaces an earlier manual ban on it.",
    )
    async def add_ban(admin: Context, body: BanIn) -> BanAdded:
        try:
            ban, overlaps = await admin.operator.ban(body.target, body.seconds, body.reason, BY)
        except ValueError as exc:  # the allowlist covers it
            raise ApiError(400, str(exc)) from None
        except StateDirError as exc:
            raise ApiError(503, str(exc)) from None
        note = f"the allowlisted addresses in {ban.target} are still let in" if overlaps else None
        return BanAdded(**BanOut.of(ban).model_dump(), note=note)

    @routes.delete(
        "/bans/{target:target}",
        responses=_ERRORS,
        summary="Unban an address or prefix (URL-encode the slash: 203.0.113.0%2F24).",
    )
    async def remove_ban(
        admin: Context, target: Annotated[str, Path(description="203.0.113.7 or 203.0.113.0/24")]
    ) -> Lifted:
        try:
            canonical = ban_target(target)
        except ValueError as exc:
            raise ApiError(400, f"{target}: {exc}") from None
        try:
            removal = await admin.operator.unban(canonical, BY)
        except StateDirError as exc:
            raise ApiError(503, str(exc)) from None
        note = None
        if removal.prefix_banned is not None:
            note = f"its prefix {removal.prefix_banned} is banned too; remove that as well to let it in"
        return Lifted(lifted=removal.count, note=note)

    return routes
