"""The admin API as a FastAPI app: /api/v1 (every route needs the bearer token), /metrics (open unless
`[admin] metrics_need_token`), the dashboard at / with its files under /static/, and the OpenAPI
document at /openapi.json. docs/admin-api.md describes each route."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Final

from fastapi import Depends, FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shieldwall import __version__
from shieldwall.admin import actions, bans, incidents, live
from shieldwall.admin.auth import TokenFile
from shieldwall.admin.context import AdminContext, ApiError, require_token, require_token_for_metrics
from shieldwall.admin.metrics import Totals, exposition, registry
from shieldwall.admin.operator import Operator
from shieldwall.config.schema import Settings
from shieldwall.control.loop import ControlLoop
from shieldwall.control.state import PIN_FILE, StateReader, control_dir

API: Final = "/api/v1"
STATIC_DIR: Final = Path(__file__).parent / "static"  # the dashboard's page, script and style
METRICS_MEDIA_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
_HEADERS: Final = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def create_app(
    control: ControlLoop,
    settings: Settings,
    *,
    pins: StateReader | None = None,
    supervisor: int | None = None,
    totals: Totals | None = None,
) -> FastAPI:
    """The app over a running ControlLoop. `pins` is the control process's reader of pin.json (a new one
    when None); `supervisor` the pid a reload signals (None: reloads answer 503); `totals` the counters
    the control process adds each tick to (see metrics.py). Makes the token file when it is missing
    (raises auth.TokenFileError when it cannot)."""
    state_dir = settings.server.state_dir
    pins = pins if pins is not None else StateReader(control_dir(state_dir) / PIN_FILE)
    totals = totals if totals is not None else Totals()
    admin = AdminContext(
        control=control,
        settings=settings,
        operator=Operator(control, settings, pins, supervisor=supervisor),
        tokens=TokenFile(settings.admin.token_path(state_dir)),
        totals=totals,
        registry=registry(control, totals),
    )
    app = FastAPI(
        title="shieldwall admin API",
        version=__version__,
        description="See docs/admin-api.md. Every /api/v1 route needs `Authorization: Bearer TOKEN`.",
        openapi_url="/openapi.json",
        docs_url=None,  # FastAPI's page loads its scripts from a CDN: nothing here comes from outside
        redoc_url=None,
    )
    app.state.admin = admin
    token = [Depends(require_token)]
    app.include_router(live.router(), prefix=API)  # its routes name their own token check (/stream's query)
    app.include_router(bans.router(), prefix=API, dependencies=token)
    app.include_router(incidents.router(), prefix=API, dependencies=token)
    app.include_router(actions.router(), prefix=API, dependencies=token)
    _add_metrics(app)
    _add_dashboard(app)
    _add_error_handlers(app)
    app.add_middleware(SecurityHeaders)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


def _openapi(app: FastAPI) -> dict[str, Any]:
    """FastAPI's document, without the 422 it lists for every route with parameters: a request that
    does not validate is answered 400 {"error": ...} here (see _add_error_handlers)."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        for operations in document.get("paths", {}).values():
            for operation in operations.values():
                operation.get("responses", {}).pop("422", None)
        schemas = document.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError"):
            schemas.pop(name, None)
        app.openapi_schema = document
    return app.openapi_schema


class SecurityHeaders:
    """Headers every answer carries (a plain ASGI middleware: it leaves /stream's streaming alone)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        api = str(scope.get("path", "")).startswith(API)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in _HEADERS.items():
                    headers.setdefault(name, value)
                if api:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _add_metrics(app: FastAPI) -> None:
    @app.get(
        "/metrics",
        dependencies=[Depends(require_token_for_metrics)],
        response_class=Response,
        responses={200: {"content": {"text/plain": {}}}},
        tags=["metrics"],
        summary="Prometheus metrics (text format 0.0.4).",
    )
    async def metrics(request: Request) -> Response:
        # On the event loop, not in a thread: the collector reads the control loop's live objects.
        admin: AdminContext = request.app.state.admin
        return Response(exposition(admin.registry), media_type=METRICS_MEDIA_TYPE)


def _add_dashboard(app: FastAPI) -> None:
    """GET / is the dashboard page; it reads the token from the URL fragment, which browsers never send."""

    @app.get("/", include_in_schema=False)
    async def dashboard() -> Response:
        page = STATIC_DIR / "index.html"
        if not page.is_file():
            raise ApiError(
                404, "the dashboard is not installed; the API is under /api/v1 (see /openapi.json)"
            )
        return FileResponse(page, headers={"Cache-Control": "no-cache"})

    if STATIC_DIR.is_dir():
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


def _add_error_handlers(app: FastAPI) -> None:
    """Every error as {"error": "what is wrong; what to do"}."""

    async def api_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        return JSONResponse({"error": exc.message}, status_code=exc.status, headers=headers)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        headers = dict(exc.headers or {})
        if exc.status_code == 404:
            message = "no such route; the routes are in /openapi.json"
        elif exc.status_code == 405:
            message = "this route does not take that method; the routes are in /openapi.json"
            # Starlette names the methods of the first route on the path only (GET /bans, not POST).
            methods = _methods_at(app, request.url.path)
            if methods:
                headers["Allow"] = ", ".join(methods)
        return JSONResponse({"error": message}, status_code=exc.status_code, headers=headers)

    async def invalid_request(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse({"error": validation_message(exc)}, status_code=400)

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)


def _methods_at(app: FastAPI, path: str) -> list[str]:
    """The methods the OpenAPI document lists for the route template that `path` matches."""
    for template, operations in app.openapi().get("paths", {}).items():
        pattern = re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template))
        if re.fullmatch(pattern, path):
            return sorted(method.upper() for method in operations)
    return []


def validation_message(exc: RequestValidationError) -> str:
    """FastAPI's list of problems as one line: 'duration: not a duration; write e.g. ...'."""
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body")
        message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
        if error.get("type") == "json_invalid":
            message = "the body is not valid JSON"
        elif error.get("type") == "missing":
            message = "missing"
        problems.append(f"{where}: {message}" if where else message)
    return "; ".join(problems) + "; /openapi.json has the request's shape"
