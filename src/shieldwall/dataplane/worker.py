"""One data-plane worker process: a fresh uvloop event loop running a ShieldServer on the sockets the
supervisor bound, until SIGTERM/SIGINT asks it to stop accepting and drain.

It runs in a child forked by the supervisor, so it first undoes what it inherited: the supervisor keeps
its signals blocked (it reads them synchronously with sigtimedwait) and may have set dispositions of its
own. Stop signals stay blocked until the loop's handlers are installed, so a SIGTERM that arrives while
the worker is still starting is acted on instead of killing it with the default action.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import importlib
import os
import signal
import socket
import sys
import traceback
from collections.abc import Callable, Sequence

import uvloop

from shieldwall.config.schema import Listener, Settings
from shieldwall.dataplane.server import ShieldServer

_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_PR_SET_NAME = 15


def run_worker(
    settings: Settings,
    sockets: Sequence[tuple[Listener, socket.socket]],
    worker_id: int,
    *,
    notify_ready: Callable[[], None] | None = None,
    telemetry: socket.socket | None = None,
) -> int:
    """Serve until told to stop; the exit code for the process (0 after a clean drain).

    `notify_ready` is called once the server accepts on every socket (the supervisor's rolling reload
    waits for it before retiring the previous generation); `telemetry` is the socket to the control
    process."""
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    reset_inherited_signals()
    set_title(f"shieldwall: worker {worker_id}", f"shieldwall-w{worker_id}")
    # Runner: a brand-new uvloop loop, and on the way out every leftover task cancelled and awaited.
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        try:
            runner.run(_serve(settings, sockets, worker_id, notify_ready, telemetry))
        except Exception:
            # One write, so that tracebacks of workers failing together do not interleave.
            sys.stderr.write(f"shieldwall: worker {worker_id} failed:\n{traceback.format_exc()}")
            sys.stderr.flush()
            return 1
    return 0


async def _serve(
    settings: Settings,
    sockets: Sequence[tuple[Listener, socket.socket]],
    worker_id: int,
    notify_ready: Callable[[], None] | None,
    telemetry: socket.socket | None,
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in _STOP_SIGNALS:
        loop.add_signal_handler(signum, stop.set)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())  # a stop signal that came during startup fires now
    server = ShieldServer(settings, loop=loop, worker_id=worker_id, telemetry=telemetry)
    starting = loop.create_task(server.start(sockets))
    stopping = loop.create_task(stop.wait())
    await asyncio.wait((starting, stopping), return_when=asyncio.FIRST_COMPLETED)
    if starting.done():
        starting.result()  # a failed start raises here
        if notify_ready is not None:
            notify_ready()
        await stopping
    else:
        # Told to stop while still starting (a reload that gave up on us): abandon the start, but
        # still stop and drain whatever part of it was already accepting.
        starting.cancel()
        await asyncio.wait((starting,))
    server.stop_accepting()
    await server.drain(settings.server.shutdown_grace)


def reset_inherited_signals() -> None:
    signal.set_wakeup_fd(-1)  # an inherited wakeup fd would write our signals into the parent's pipe
    for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)
    # A terminal hangup reaches the whole process group; reloading is the supervisor's job alone.
    signal.signal(signal.SIGHUP, signal.SIG_IGN)


def bind_to_parent(parent_pid: int) -> bool:
    """Ask for SIGTERM when the parent dies, so a SIGKILLed supervisor leaves no orphan workers holding
    the port (best effort: skipped where prctl is unavailable). False if the parent is already gone,
    i.e. it died between fork and here, before the request could take effect."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    return os.getppid() == parent_pid


def set_title(title: str, short: str) -> None:
    """Let `ps`/`top` tell the processes apart: the 15-byte thread name (`short`, also what
    /proc/PID/comm shows), and the whole command line (`title`) when setproctitle is installed."""
    with contextlib.suppress(ImportError):
        importlib.import_module("setproctitle").setproctitle(title)
    name = short.encode()[:15]  # after setproctitle, which may set the thread name too
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_NAME, name, 0, 0, 0)
