"""Servers run as child processes on loopback, for the demo, the integration tests and the benchmarks.

Each child starts in a session of its own: the workers it forks can then be found by session id, even
after they were orphaned, and killed without ever signalling anyone else's process. Its stderr (and its
stdout, unless read) goes to a log file whose tail explains a failure. Every wait has a deadline, and a
child that does not come up is stopped before the error is raised, so a caller only ever has to stop
the children that did start."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import selectors
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, Self

HOST = "127.0.0.1"
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
_POLL_INTERVAL = 0.05


class StartError(RuntimeError):
    """A child exited or missed its deadline before it was ready; it has been stopped."""


def free_port(host: str = HOST) -> int:
    """A loopback port nobody listens on right now, for a server that cannot be told to bind port 0."""
    if not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"{host} is not a loopback address")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def accepts(host: str, port: int, timeout: float = 0.5) -> bool:
    """Whether host:port takes a TCP connection now."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def session_members(session: int) -> list[int]:
    """PIDs of the live (not zombie) processes in a session, read from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue  # it ended while we looked
        # the command name is in parentheses and may contain spaces and ')': count from the last ')'
        fields = stat.rpartition(")")[2].split()  # fields[0] is proc(5)'s field 3, the state
        if int(fields[3]) == session and fields[0] != "Z":
            members.append(int(entry.name))
    return sorted(members)


def parse_status_kib(text: str, key: str) -> int:
    """A `Key:   1234 kB` figure from /proc/PID/status, e.g. VmHWM (peak resident set), in KiB."""
    for line in text.splitlines():
        name, sep, value = line.partition(":")
        if sep and name == key:
            number, _, unit = value.strip().partition(" ")
            if unit != "kB":
                raise ValueError(f"{key} in unexpected unit {unit!r}")
            return int(number)
    raise KeyError(f"{key} not in /proc/PID/status")


def status_kib(pid: int, key: str) -> int:
    """A memory figure of a live process, e.g. VmRSS or VmHWM (peak resident set), in KiB."""
    status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    return parse_status_kib(status, key)


@dataclass
class Child:
    """One server process, its session and its log. `port` is 0 until known (see read_announced_port)."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    port: int = 0
    host: str = HOST

    @classmethod
    def spawn(
        cls,
        name: str,
        argv: list[str],
        log_path: Path,
        *,
        port: int = 0,
        host: str = HOST,
        capture_stdout: bool = False,
    ) -> Self:
        """Start `argv` in a new session, stdin from /dev/null, stderr (and stdout unless captured)
        into `log_path`. It listens (or will) on `host`:`port`."""
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if capture_stdout else log,
                stderr=log,
                start_new_session=True,
            )
        return cls(name, popen, log_path, port, host)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    def processes(self) -> list[int]:
        """This process and its live helpers (a master's or supervisor's workers)."""
        return session_members(self.pid)

    def log_tail(self, limit: int = 4000) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return text[-limit:] or "(empty)"

    def read_announced_port(self, prefix: str, timeout: float) -> None:
        """Set `port` from the first line of the child's captured stdout, `prefix` then the port: how a
        server told to bind port 0 says where it listens."""
        if self.popen.stdout is None:
            raise ValueError(f"{self.name}: stdout was not captured")
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self.popen.stdout, selectors.EVENT_READ)
                ready = selector.select(timeout)
            line = self.popen.stdout.readline().decode(errors="replace") if ready else ""
        except BaseException:
            self.stop()
            raise
        port = line.removeprefix(prefix).strip()
        if not line.startswith(prefix) or not port.isdigit():
            self._fail(f"its first line of output within {timeout:g} s was {line!r}")
        self.port = int(port)

    def wait_accepting(self, timeout: float) -> None:
        """Until the child's address takes a TCP connection."""
        self.wait_until(lambda: accepts(*self.address), timeout, f"connection accepted on port {self.port}")

    def wait_until(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        """Poll `ready` until it is true. If the child exits first, or `timeout` s pass (raising
        StartError: "no `what` within ..."), or anything else interrupts the wait, stop the child."""
        deadline = time.monotonic() + timeout
        try:
            while not ready():
                if self.popen.poll() is not None:
                    why = f"exited with status {self.popen.returncode}"
                    break
                if time.monotonic() >= deadline:
                    why = f"no {what} within {timeout:g} s"
                    break
                time.sleep(_POLL_INTERVAL)
            else:
                return
        except BaseException:
            self.stop()
            raise
        self._fail(why)

    def stop(self, grace: float = STOP_GRACE) -> None:
        """SIGTERM, SIGKILL if still there after `grace` s, then SIGKILL whatever it left in its
        session. Only ever signals by PID, and may be called again."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(grace)
        for leftover in session_members(self.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(leftover, signal.SIGKILL)
        if self.popen.stdout is not None:
            self.popen.stdout.close()

    def _fail(self, why: str) -> NoReturn:
        self.stop()
        raise StartError(f"{self.name} did not start: {why}\n--- its log ---\n{self.log_tail()}")
