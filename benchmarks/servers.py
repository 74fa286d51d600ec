"""Starting the benchmark's servers (nginx origin, nginx proxy, shieldwall) and stopping exactly them.

Each server runs pinned to one CPU with `taskset`, in a session of its own (so its workers can be found
and nothing else is ever signalled), from a config generated into the run's temp dir: pid file, logs
and temp paths all live there, and nothing is left on port 80 or in /var/log. `Servers` is a context
manager: whatever happens (an exception, Ctrl-C, SIGTERM turned into SystemExit by run.py), every
process it started is stopped by PID on the way out.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from benchmarks.procstat import session_members

TEMPLATES = Path(__file__).parent / "nginx"
READY_TIMEOUT = 15.0  # seconds a server has to answer its first request
STOP_GRACE = 5.0  # seconds between SIGTERM and SIGKILL


def free_port() -> int:
    """A loopback port nobody listens on now (for servers that cannot be told to bind port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def render_template(name: str, **values: str) -> str:
    """benchmarks/nginx/NAME with every @@KEY@@ replaced (nginx itself uses `$`, so `@@` marks ours)."""
    text = (TEMPLATES / name).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", value)
    if "@@" in text:
        raise ValueError(f"{name}: a placeholder was left unfilled near {text[text.index('@@') :][:40]!r}")
    return text


def shield_config_toml(*, port: int, origin_port: int, access_log: Path | None, rate_limited: bool) -> str:
    """A shieldwall config equivalent to proxy.conf.tmpl. With `access_log`, every line is written
    (max_lines_per_second = 0) because nginx writes every line too."""
    lines = [
        "[server]",
        "workers = 1",
        "shutdown_grace = 2.0",
        "",
        "[[listeners]]",
        f'address = "127.0.0.1:{port}"',
        "",
        "[upstream]",
        f'url = "http://127.0.0.1:{origin_port}"',
        "",
        "[access_log]",
    ]
    if access_log is None:
        lines.append('path = "off"')
    else:
        lines += [f'path = "{access_log}"', "max_lines_per_second = 0"]
    if rate_limited:
        lines += ["", "[limits]", "requests_per_second_per_ip = 1", "requests_burst_per_ip = 1"]
    return "\n".join(lines) + "\n"


@dataclass
class Server:
    name: str
    popen: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def processes(self) -> list[int]:
        """The leader (nginx master / shieldwall supervisor) and its workers."""
        return session_members(self.popen.pid)

    def log_tail(self, limit: int = 3000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-limit:] or "(empty)"
        except FileNotFoundError:
            return "(no log)"


class Servers:
    """Starts servers into `workdir` and stops every one of them when the `with` block ends."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.live: list[Server] = []

    def __enter__(self) -> Servers:
        return self

    def __exit__(
        self, _type: type[BaseException] | None, _exc: BaseException | None, _tb: TracebackType | None
    ) -> None:
        while self.live:
            self.stop(self.live[-1])

    def nginx_origin(self, cpu: int) -> Server:
        port = free_port()
        conf = self.workdir / "origin.conf"
        conf.write_text(render_template("origin.conf.tmpl", DIR=str(self.workdir), PORT=str(port)))
        return self._start("nginx-origin", self._nginx_argv(conf, "origin"), port, cpu)

    def nginx_proxy(self, cpu: int, *, origin_port: int, access_log: bool, rate_limited: bool) -> Server:
        port = free_port()
        log_line = (
            f"access_log {self.workdir}/nginx-{port}.access.log combined;"
            if access_log
            else "access_log off;"
        )
        limit = "limit_req zone=perip burst=1 nodelay; limit_req_status 429;" if rate_limited else ""
        conf = self.workdir / f"proxy-{port}.conf"
        text = render_template(
            "proxy.conf.tmpl",
            DIR=str(self.workdir),
            PORT=str(port),
            ORIGIN_PORT=str(origin_port),
            ACCESS_LOG=log_line,
            LIMIT_REQ=limit,
        )
        conf.write_text(text)
        return self._start("nginx", self._nginx_argv(conf, f"proxy-{port}"), port, cpu)

    def shieldwall(self, cpu: int, *, origin_port: int, access_log: bool, rate_limited: bool) -> Server:
        port = free_port()
        log = self.workdir / f"shieldwall-{port}.access.log" if access_log else None
        conf = self.workdir / f"shieldwall-{port}.toml"
        conf.write_text(
            shield_config_toml(port=port, origin_port=origin_port, access_log=log, rate_limited=rate_limited)
        )
        argv = [sys.executable, "-m", "shieldwall", "run", "--config", str(conf), "--workers", "1"]
        return self._start("shieldwall", argv, port, cpu)

    def stop(self, server: Server) -> None:
        """SIGTERM the leader, SIGKILL it after STOP_GRACE s, then SIGKILL what it left in its session."""
        if server in self.live:
            self.live.remove(server)
        if server.popen.poll() is None:
            server.popen.send_signal(signal.SIGTERM)
            try:
                server.popen.wait(STOP_GRACE)
            except subprocess.TimeoutExpired:
                server.popen.kill()
                server.popen.wait(STOP_GRACE)
        for leftover in session_members(server.popen.pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(leftover, signal.SIGKILL)

    def _nginx_argv(self, conf: Path, stem: str) -> list[str]:
        # -e: nginx opens its error log before reading the config; keep even that one in the temp dir.
        error_log = self.workdir / f"{stem}.error.log"
        return ["nginx", "-p", str(self.workdir), "-c", str(conf), "-e", str(error_log)]

    def _start(self, name: str, argv: list[str], port: int, cpu: int) -> Server:
        log_path = self.workdir / f"{name}-{port}.stderr"
        with log_path.open("wb") as log:
            popen = subprocess.Popen(
                ["taskset", "-c", str(cpu), *argv],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,
            )
        server = Server(name, popen, port, log_path)
        self.live.append(server)
        self._wait_ready(server)
        return server

    def _wait_ready(self, server: Server) -> None:
        """Until the server answers an HTTP request (any status: a rate-limited one may say 429)."""
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if server.popen.poll() is not None:
                self._fail(server, f"exited with status {server.popen.returncode}")
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=1.0)
            try:
                conn.request("GET", "/")
                conn.getresponse().read()
                return
            except (OSError, http.client.HTTPException):
                time.sleep(0.05)
            finally:
                conn.close()
        self._fail(server, f"no HTTP answer on port {server.port} within {READY_TIMEOUT:g} s")

    def _fail(self, server: Server, why: str) -> None:
        self.stop(server)
        raise RuntimeError(f"{server.name} did not start: {why}\n--- its output ---\n{server.log_tail()}")
