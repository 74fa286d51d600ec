"""/api/v1/mode, /api/v1/signatures and /api/v1/reload: what an operator decides during an attack
(admin/operator.py does it)."""

from __future__ import annotations

from fastapi import APIRouter

from shieldwall.admin.context import BY, ApiError, Context
from shieldwall.admin.models import PinIn, PinOut, Reloading, SignatureDone, errors
from shieldwall.admin.operator import NoSupervisor

_WRITE_ERRORS = errors(400, 401, 503)
_SIGNATURE_ERRORS = errors(400, 401, 404)


def _no_signature(signature_id: str) -> ApiError:
    return ApiError(
        404,
        f"no active signature {signature_id}: it may have expired or ended with its incident; "
        "GET /api/v1/status lists the active ones",
    )


def router() -> APIRouter:
    routes = APIRouter(tags=["actions"])

    @routes.post(
        "/mode/pin",
        responses=_WRITE_ERRORS,
        summary="Hold a mode until the duration runs out or an unpin.",
    )
    async def pin_mode(admin: Context, body: PinIn) -> PinOut:
        try:
            pin = admin.operator.pin(body.mode, body.seconds, BY, body.reason)
        except OSError as exc:
            raise ApiError(
                503, f"cannot write the pin file: {exc.strerror or exc}; check server.state_dir"
            ) from None
        return PinOut(mode=pin.mode, until=pin.until, mode_now=admin.control.detector.mode)

    @routes.post(
        "/mode/unpin",
        responses=_WRITE_ERRORS,
        summary="Lift a pin: the detector decides the mode again.",
    )
    async def unpin_mode(admin: Context) -> PinOut:
        try:
            pin = admin.operator.pin(None, None, BY)
        except OSError as exc:
            raise ApiError(
                503, f"cannot write the pin file: {exc.strerror or exc}; check server.state_dir"
            ) from None
        return PinOut(mode=None, until=pin.until, mode_now=admin.control.detector.mode)

    @routes.post(
        "/signatures/{signature_id}/pin",
        responses=_SIGNATURE_ERRORS,
        summary="Keep an active signature in force until unpinned, even after its incident.",
    )
    async def pin_signature(admin: Context, signature_id: str) -> SignatureDone:
        if not admin.operator.pin_signature(signature_id, BY):
            raise _no_signature(signature_id)
        return SignatureDone(id=signature_id, status="pinned")

    @routes.post(
        "/signatures/{signature_id}/unpin",
        responses=_SIGNATURE_ERRORS,
        summary="Let a pinned signature expire again when it stops matching.",
    )
    async def unpin_signature(admin: Context, signature_id: str) -> SignatureDone:
        if not admin.operator.unpin_signature(signature_id, BY):
            raise ApiError(404, f"signature {signature_id} is not pinned")
        return SignatureDone(id=signature_id, status="unpinned")

    @routes.post(
        "/signatures/{signature_id}/reject",
        responses=errors(400, 401, 404, 503),
        summary="Stop applying a signature, and never propose it again during this incident.",
    )
    async def reject_signature(admin: Context, signature_id: str) -> SignatureDone:
        try:
            found = admin.operator.reject_signature(signature_id, BY)
        except OSError as exc:
            raise ApiError(
                503,
                f"rejected, but the workers could not be told yet ({exc.strerror or exc}); "
                "they stop applying it at the next state change",
            ) from None
        if not found:
            raise _no_signature(signature_id)
        return SignatureDone(id=signature_id, status="rejected")

    @routes.post(
        "/reload",
        status_code=202,
        responses=_WRITE_ERRORS,
        summary="Reload the configuration file (SIGHUP to the supervisor); a bad file changes nothing.",
    )
    async def reload(admin: Context) -> Reloading:
        try:
            pid = admin.operator.reload(BY)
        except NoSupervisor as exc:
            raise ApiError(503, f"{exc}; reload it with `kill -HUP` on the shieldwall process") from None
        return Reloading(supervisor=pid)

    return routes
