"""The control process as the supervisor sees it: forked with the reading end of the telemetry socket,
restarted with backoff when it dies, stopped with the workers. Workers get the writing end.

A datagram socketpair made before any fork: every worker writes its second to the same end (datagrams
never interleave), nothing is named in the filesystem, and a restarted control process reads from the
same socket, so workers never need to know it was restarted.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable

from shieldwall.config.schema import Settings
from shieldwall.dataplane.worker import bind_to_parent, reset_inherited_signals, set_title

CONTROL_COMM = "shieldwall-ctl"  # its /proc/PID/comm
_BACKOFF_FIRST = 1.0
_BACKOFF_MAX = 30.0
_STABLE_AFTER = 10.0
_BUFFER = 4 << 20  # a few seconds of every worker's messages (~40 KB each) while the control process is busy


class ControlChild:
    def __init__(self, log: Callable[[str], None]) -> None:
        self.reader, self.writer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        with contextlib.suppress(OSError):  # capped by net.core.rmem_max; the default still works
            self.reader.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _BUFFER)
        self.writer.setblocking(False)
        self.pid: int | None = None
        self.started = 0.0
        self.due: float | None = None  # when to restart it
        self._streak = 0
        self._log = log

    def spawn(self, settings: Settings, close_in_child: Callable[[], None]) -> None:
        parent = os.getpid()
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                if bind_to_parent(parent):
                    close_in_child()  # the listening sockets are the workers' business
                    self.writer.close()
                    reset_inherited_signals()
                    set_title("shieldwall: control", CONTROL_COMM)
                    from shieldwall.control.process import run_control  # noqa: PLC0415 (child only)

                    code = run_control(settings, self.reader)
            except BaseException:
                traceback.print_exc()
            finally:
                with contextlib.suppress(BaseException):
                    sys.stdout.flush()
                    sys.stderr.flush()
                os._exit(code)
        self.pid, self.started, self.due = pid, time.monotonic(), None

    def reap(self, *, stopping: bool) -> None:
        """Notice its exit; schedule a restart unless the supervisor is stopping."""
        if self.pid is None:
            return
        try:
            done, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            done, status = self.pid, 0
        if not done:
            return
        pid, self.pid = self.pid, None
        if stopping:
            return
        now = time.monotonic()
        if now - self.started >= _STABLE_AFTER:
            self._streak = 0
        delay = min(_BACKOFF_MAX, _BACKOFF_FIRST * 2**self._streak)
        self._streak += 1
        self.due = now + delay
        self._log(f"control process (pid {pid}) exited ({status}); restarting it in {delay:g} s")

    def restart_if_due(self, settings: Settings, close_in_child: Callable[[], None]) -> None:
        if self.due is not None and self.pid is None and time.monotonic() >= self.due:
            try:
                self.spawn(settings, close_in_child)
            except OSError as exc:
                self.due = time.monotonic() + _BACKOFF_FIRST
                self._log(f"cannot fork the control process: {exc}")

    def signal(self, signum: int) -> None:
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signum)

    def kill_and_reap(self) -> None:
        if self.pid is not None:
            self.signal(signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.pid = None

    def close(self) -> None:
        self.reader.close()
        self.writer.close()
