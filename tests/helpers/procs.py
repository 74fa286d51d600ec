"""Start the demo origin and `shieldwall run` as real subprocesses on loopback, and stop them by PID.

Each process writes stderr to a file so that a failing test can show what the server said; every
live process is kept in LIVE for the failure report hook in tests/integration/conftest.py."""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.tomlfile import merge, write_toml

STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL
READY_TIMEOUT = 15.0

# Every test shield stops quickly and logs to its stderr file; tests add their own settings on top.
BASE_SHIELD_CONFIG: dict[str, Any] = {"server": {"shutdown_grace": 2.0}}


@dataclass
class ServerProcess:
    name: str
    popen: subprocess.Popen[bytes]
    host: str
    port: int
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def address(self) -> tuple[str, int]:
        return self.host, self.port

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def log_tail(self, limit: int = 4000) -> str:
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return text[-limit:] or "(empty)"

    def processes(self) -> list[int]:
        """This process and its live helpers (a supervisor's workers)."""
        return session_members(self.pid)


LIVE: list[ServerProcess] = []


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (for a process that cannot be told to bind port 0)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def session_members(session: int) -> list[int]:
    """PIDs of the live processes in a session. Servers start in a session of their own, so this
    finds a supervisor's workers even after they were orphaned, and never anyone else's process."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name is in parentheses and may contain spaces: split after the last ')'
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == session and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def proc_status_kib(pid: int, key: str) -> int:
    """A memory figure from /proc/PID/status, e.g. VmRSS or VmHWM (peak RSS), in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(f"{key} not in /proc/{pid}/status")


def _spawn(argv: list[str], log_path: Path, capture_stdout: bool) -> subprocess.Popen[bytes]:
    """Start in a session of its own, stderr (and stdout unless captured) into `log_path`."""
    with log_path.open("wb") as log:
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if capture_stdout else log,
            stderr=log,
            start_new_session=True,
        )


def _fail_start(proc: ServerProcess, why: str) -> None:
    stop(proc)
    raise RuntimeError(f"{proc.name} did not start: {why}\n--- its stderr ---\n{proc.log_tail()}")


def start_origin(workdir: Path) -> ServerProcess:
    """`python -m shieldwall.drill.origin` on a free loopback port, once it has said it listens."""
    argv = [sys.executable, "-m", "shieldwall.drill.origin", "--listen", "127.0.0.1:0"]
    log_path = workdir / "origin.stderr"
    popen = _spawn(argv, log_path, capture_stdout=True)
    proc = ServerProcess("origin", popen, "127.0.0.1", 0, log_path)
    LIVE.append(proc)
    assert popen.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(popen.stdout, selectors.EVENT_READ)
        ready = selector.select(READY_TIMEOUT)
    line = popen.stdout.readline().decode() if ready else ""
    prefix = "origin listening on 127.0.0.1:"
    if not line.startswith(prefix):
        _fail_start(proc, f"first stdout line was {line!r}")
    proc.port = int(line.removeprefix(prefix))
    return proc


def start_shield(workdir: Path, upstream: str, config: dict[str, Any] | None = None) -> ServerProcess:
    """`shieldwall run --workers 1` in front of `upstream`, with BASE_SHIELD_CONFIG + `config`
    written to a TOML file, once its port accepts connections. The shield listens on a free
    127.0.0.1 port, unless `config` declares its own `listeners` (the first one is then the address)."""
    config = merge(BASE_SHIELD_CONFIG, config or {})
    if config.get("listeners"):
        host, _, port_text = config["listeners"][0]["address"].rpartition(":")
        host, port = host.strip("[]"), int(port_text)
        listen = []
    else:
        host, port = "127.0.0.1", free_port()
        listen = ["--listen", f"127.0.0.1:{port}"]
    name = f"shield-{port}"
    config_path = workdir / f"{name}.toml"
    write_toml(config_path, config)
    argv = [
        sys.executable, "-m", "shieldwall", "run",
        "--upstream", upstream,
        *listen,
        "--workers", "1",
        "--config", str(config_path),
    ]  # fmt: skip
    log_path = workdir / f"{name}.stderr"
    popen = _spawn(argv, log_path, capture_stdout=False)
    proc = ServerProcess(name, popen, host, port, log_path)
    LIVE.append(proc)
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            _fail_start(proc, f"exited with status {popen.returncode}")
        with contextlib.suppress(OSError), socket.create_connection(proc.address, timeout=0.5):
            return proc
        time.sleep(0.05)
    _fail_start(proc, f"port {port} did not accept within {READY_TIMEOUT:.0f} s")
    raise AssertionError("unreachable")


def stop(proc: ServerProcess) -> None:
    """SIGTERM, SIGKILL after STOP_GRACE s, then SIGKILL whatever it left behind in its session."""
    if proc in LIVE:
        LIVE.remove(proc)
    if proc.popen.poll() is None:
        proc.popen.send_signal(signal.SIGTERM)
        try:
            proc.popen.wait(STOP_GRACE)
        except subprocess.TimeoutExpired:
            proc.popen.kill()
            proc.popen.wait(STOP_GRACE)
    for leftover in session_members(proc.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(leftover, signal.SIGKILL)
    if proc.popen.stdout is not None:
        proc.popen.stdout.close()
