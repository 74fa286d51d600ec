"""Starting the benchmark's servers (nginx origin, nginx proxy, shieldwall) and stopping exactly them.

Each server runs pinned to one CPU with `taskset`, in a session of its own (so its workers can be found
and nothing else is ever signalled), from a config generated into the run's temp dir: pid file, logs
and temp paths all live there, and nothing is left on port 80 or in /var/log. `Servers` is a context
manager: whatever happens (an exception, Ctrl-C, SIGTERM turned into SystemExit by run.py), every
process it started is stopped by PID on the way out.
"""

from __future__ import annotations

import http.client
import sys
from pathlib import Path
from types import TracebackType

from shieldwall.control.state import Pin, write_pin
from shieldwall.detector.events import Mode
from shieldwall.drill.processes import Child, free_port

TEMPLATES = Path(__file__).parent / "nginx"
READY_TIMEOUT = 15.0  # seconds a server has to answer its first request


def render_template(name: str, **values: str) -> str:
    """benchmarks/nginx/NAME with every @@KEY@@ replaced (nginx itself uses `$`, so `@@` marks ours)."""
    text = (TEMPLATES / name).read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace(f"@@{key}@@", value)
    if "@@" in text:
        raise ValueError(f"{name}: a placeholder was left unfilled near {text[text.index('@@') :][:40]!r}")
    return text


def shield_config_toml(
    *, port: int, origin_port: int, access_log: Path | None, rate_limited: bool, state_dir: Path
) -> str:
    """A shieldwall config equivalent to proxy.conf.tmpl. With `access_log`, every line is written
    (max_lines_per_second = 0) because nginx writes every line too."""
    lines = [
        "[server]",
        "workers = 1",
        "shutdown_grace = 2.0",
        f'state_dir = "{state_dir}"',
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
    # nginx's limit_req never bans; with automatic bans on, wrk's client would be banned after 30
    # refusals and the 429 row would measure refusals at accept instead (cheaper, but not comparable).
    lines += ["", "[bans]", "enabled = false"]
    # The admin listener's fixed default port could collide with another run; the API is not measured.
    lines += ["", "[admin]", "enabled = false"]
    return "\n".join(lines) + "\n"


class Server(Child):
    """A benchmarked server (its processes are the leader, nginx master or shieldwall supervisor, and
    its workers); `url` is what the load generator requests."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"


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
        return self.start("nginx-origin", self._nginx_argv(conf, "origin"), port, cpu)

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
        return self.start("nginx", self._nginx_argv(conf, f"proxy-{port}"), port, cpu)

    def shieldwall(self, cpu: int, *, origin_port: int, access_log: bool, rate_limited: bool) -> Server:
        port = free_port()
        log = self.workdir / f"shieldwall-{port}.access.log" if access_log else None
        conf = self.workdir / f"shieldwall-{port}.toml"
        conf.write_text(
            shield_config_toml(
                port=port,
                origin_port=origin_port,
                access_log=log,
                rate_limited=rate_limited,
                state_dir=self.workdir / "state",
            )
        )
        # wrk's load is a flood by the detector's measure: left alone, the shield would go under_attack
        # and challenge wrk, and the rows would measure challenge pages. Pinned to normal, the detector
        # and its per-request counting still run, as they do for a site in peacetime.
        write_pin(self.workdir / "state", Pin(Mode.NORMAL, None, "make bench"))
        argv = [sys.executable, "-m", "shieldwall", "run", "--config", str(conf), "--workers", "1"]
        return self.start("shieldwall", argv, port, cpu)

    def bare(self, cpu: int, *, origin_port: int, rate_limited: bool) -> Server:
        """The floor of the stack: benchmarks.bare_proxy, uvloop + httptools and nothing else."""
        port = free_port()
        argv = [
            sys.executable,
            "-m",
            "benchmarks.bare_proxy",
            "--listen",
            str(port),
            "--upstream",
            str(origin_port),
        ]
        if rate_limited:
            argv += ["--limit-rps", "1"]
        return self.start("bare", argv, port, cpu)

    def stop(self, server: Server) -> None:
        """Stop `server` (see Child.stop) and forget it."""
        if server in self.live:
            self.live.remove(server)
        server.stop()

    def _nginx_argv(self, conf: Path, stem: str) -> list[str]:
        # -e: nginx opens its error log before reading the config; keep even that one in the temp dir.
        error_log = self.workdir / f"{stem}.error.log"
        return ["nginx", "-p", str(self.workdir), "-c", str(conf), "-e", str(error_log)]

    def start(self, name: str, argv: list[str], port: int, cpu: int, *, ready: bool | None = True) -> Server:
        """Start `argv` pinned to `cpu`; with `ready`, once it answers HTTP on `port` (None: the caller
        waits for it in its own way)."""
        pinned = ["taskset", "-c", str(cpu), *argv]
        server = Server.spawn(name, pinned, self.workdir / f"{name}-{port}.stderr", port=port)
        self.live.append(server)
        if ready:
            server.wait_until(lambda: _answers_http(port), READY_TIMEOUT, f"HTTP answer on port {port}")
        return server


def _answers_http(port: int) -> bool:
    """Whether the server answers an HTTP request (any status: a rate-limited one may say 429)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1.0)
    try:
        conn.request("GET", "/")
        conn.getresponse().read()
    except (OSError, http.client.HTTPException):
        return False
    finally:
        conn.close()
    return True
