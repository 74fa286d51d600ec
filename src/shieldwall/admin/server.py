"""The admin listener inside the control process: uvicorn serving the app on the control process's own
asyncio loop, next to the one-second tick.

uvicorn's `Server.serve()` is not used: it installs its own SIGINT/SIGTERM handlers, which would take
the control process's (control/process.py stops on them). Its parts are: the socket is bound here (so a
busy port is our error to report, and port 0 works in tests), `startup()` serves on it, `main_loop()`
runs as a task (it keeps the Date header fresh and watches `should_exit`), and `shutdown()` closes.

The listener is the control process's: when the supervisor restarts that process, the listener comes
back with it. When it cannot listen (the port is taken, the token file cannot be made), the control
process logs why and goes on without it: detection matters more than the dashboard.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from typing import Final

import uvicorn

from shieldwall.admin.app import create_app
from shieldwall.admin.auth import TokenFileError
from shieldwall.admin.context import AdminContext
from shieldwall.admin.metrics import Totals
from shieldwall.config.schema import Settings
from shieldwall.control.loop import ControlLoop
from shieldwall.control.state import StateReader
from shieldwall.detector.events import Event

log = logging.getLogger("shieldwall.admin")

GRACE: Final = 2  # seconds open requests get to finish when the control process stops


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (SO_REUSEADDR, so a restarted control process can listen
    again at once). Raises OSError."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=64)


class AdminServer:
    """uvicorn serving one app on an already bound socket, in the running loop."""

    def __init__(self, app: object, sock: socket.socket) -> None:
        self.sock = sock
        config = uvicorn.Config(
            app,  # type: ignore[arg-type]  # an ASGI app; uvicorn's type lists the shapes it accepts
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            proxy_headers=False,
            timeout_graceful_shutdown=GRACE,
        )
        config.load()
        self.server = uvicorn.Server(config)
        self._main: asyncio.Task[None] | None = None

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.sock.getsockname()[:2]
        return str(host), int(port)

    async def start(self) -> None:
        self.server.lifespan = self.server.config.lifespan_class(self.server.config)
        await self.server.startup(sockets=[self.sock])
        self._main = asyncio.create_task(self.server.main_loop())

    async def stop(self) -> None:
        self.server.should_exit = True
        if self._main is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._main
        await self.server.shutdown(sockets=[self.sock])


class AdminService:
    """What control/process.py holds: the listener (None when off or unable to listen) and the hooks
    the tick calls, which do nothing without a listener."""

    def __init__(self, context: AdminContext | None = None, server: AdminServer | None = None) -> None:
        self.context = context
        self.server = server

    def take_events(self) -> list[Event]:
        """Events of the pins made through the API since the last tick, for the tick's log and save."""
        return self.context.operator.take_events() if self.context is not None else []

    def ticked(self) -> None:
        """After each tick: count its second into the metrics' totals."""
        if self.context is not None:
            self.context.totals.add(self.context.control.last_second)

    async def stop(self) -> None:
        if self.context is not None:
            self.context.closing = True  # open /stream responses end
        if self.server is not None:
            await self.server.stop()


async def start_admin(settings: Settings, control: ControlLoop, pins: StateReader) -> AdminService:
    """Serve the admin API when `[admin] enabled`; `pins` is the control process's reader of pin.json.
    Never raises for what an operator must fix: it logs it and serves nothing."""
    section = settings.admin
    if not section.enabled:
        return AdminService()
    host, port = section.host_port
    try:
        app = create_app(control, settings, pins=pins, supervisor=os.getppid(), totals=Totals())
        server = AdminServer(app, bind(host, port))
        await server.start()
    except TokenFileError as exc:
        log.error("admin API off: %s", exc)
        return AdminService()
    except OSError as exc:
        log.error(
            "admin API off: cannot listen on %s (%s); free the port or set [admin] listen, then restart",
            section.listen,
            exc.strerror or exc,
        )
        return AdminService()
    admin: AdminContext = app.state.admin
    bound_host, bound_port = server.address
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    log.info("admin API on http://%s:%d/ (token in %s)", shown, bound_port, admin.tokens.path)
    return AdminService(admin, server)
