"""`shieldwall demo` until the full demo lands: the demo origin and a shield on loopback, a handful
of requests through the shield (ordinary, hostile, slow), and a table of what happened.

Everything runs on 127.0.0.1, every wait has a deadline (the whole demo takes a few seconds, 30 at
most) and both servers are stopped by PID whatever happens. Exit status 0 only if every step
behaved as expected, so `make demo` doubles as a smoke test."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from shieldwall.drill.processes import HOST, Child, StartError, free_port

START_TIMEOUT = 10.0
HEADER_TIMEOUT = 2.0  # the shield's slowloris deadline in this demo
DRIP_INTERVAL = 0.5
DEMO_CONFIG = f"""\
[server]
shutdown_grace = 2.0
state_dir = "{{state_dir}}"

[limits]
header_timeout = {HEADER_TIMEOUT}

[access_log]
path = "off"
"""


@dataclass
class Step:
    """One row of the demo: what we try, what the shield should do, and a probe that tries it
    against the shield's port and says (what happened, whether that was right)."""

    name: str
    expected: str
    probe: Callable[[int], tuple[str, bool]]


def _raw_status(port: int, data: bytes) -> str:
    """Send raw bytes, return the response's status line (or how the connection ended)."""
    with socket.create_connection((HOST, port), timeout=5.0) as sock:
        with contextlib.suppress(OSError):  # the shield may answer and close before taking it all
            sock.sendall(data)
        received = b""
        while b"\r\n" not in received:
            try:
                piece = sock.recv(4096)
            except OSError as exc:
                return f"connection error ({exc.__class__.__name__})"
            if not piece:
                return "closed without an answer"
            received += piece
    return received.split(b"\r\n", 1)[0].decode("latin-1").removeprefix("HTTP/1.1 ")


def probe_page(port: int) -> tuple[str, bool]:
    conn = http.client.HTTPConnection(HOST, port, timeout=5.0)
    try:
        conn.request("GET", "/", headers={"Accept": "text/html"})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    return f"{response.status}, {len(body)} bytes of HTML", response.status == 200 and b"<h1>" in body


def probe_post(port: int) -> tuple[str, bool]:
    payload = json.dumps({"comment": "hello from a real visitor"}).encode()
    conn = http.client.HTTPConnection(HOST, port, timeout=5.0)
    try:
        conn.request("POST", "/echo", body=payload, headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        seen = json.loads(response.read()) if response.status == 200 else {}
    finally:
        conn.close()
    via = next((value for name, value in seen.get("headers", []) if name.lower() == "via"), "no Via")
    got = f"{response.status}, origin got {seen.get('body_len', 0)} bytes ({via})"
    return got, response.status == 200 and seen.get("body_len") == len(payload)


def probe_smuggling(port: int) -> tuple[str, bool]:
    """Two different Content-Lengths: front and back end could disagree on where the body ends."""
    got = _raw_status(
        port,
        b"POST /echo HTTP/1.1\r\nHost: demo\r\nContent-Length: 4\r\nContent-Length: 44\r\n\r\n"
        b"1234GET /admin HTTP/1.1\r\nHost: demo\r\n\r\n",
    )
    return got, got.startswith("400")


def probe_big_header(port: int) -> tuple[str, bool]:
    got = _raw_status(port, b"GET / HTTP/1.1\r\nHost: demo\r\nX-Junk: " + b"j" * 40_000 + b"\r\n\r\n")
    return got, got.startswith("431")


def probe_slowloris(port: int) -> tuple[str, bool]:
    """Send a header line every DRIP_INTERVAL s and never finish: the shield must cut us off."""
    with socket.create_connection((HOST, port), timeout=DRIP_INTERVAL) as sock:
        started = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: demo\r\n")
        answer = b""
        while (elapsed := time.monotonic() - started) < HEADER_TIMEOUT + 3:
            try:
                piece = sock.recv(4096)
            except TimeoutError:
                with contextlib.suppress(OSError):
                    sock.sendall(b"X-Still-Typing: yes\r\n")
                continue
            except OSError:
                piece = b""
            if not piece:
                how = answer.split(b"\r\n", 1)[0].decode("latin-1").removeprefix("HTTP/1.1 ") or "closed"
                return f"{how} after {elapsed:.1f} s", HEADER_TIMEOUT - 0.5 <= elapsed <= HEADER_TIMEOUT + 1.5
            answer += piece
    return f"still open after {elapsed:.1f} s", False


STEPS = (
    Step("a visitor loads the home page", "200", probe_page),
    Step("a form is posted (the origin echoes it)", "200", probe_post),
    Step("request smuggling (two Content-Lengths)", "400", probe_smuggling),
    Step("a 40 KB header", "431", probe_big_header),
    Step(
        f"slowloris (a header line every {DRIP_INTERVAL} s)",
        f"cut at ~{HEADER_TIMEOUT:.0f} s",
        probe_slowloris,
    ),
)


def _run(step: Step, port: int) -> tuple[str, str, str, str, str]:
    """A table row: name, expected, got, duration, verdict."""
    started = time.monotonic()
    try:
        got, ok = step.probe(port)
    except OSError as exc:
        got, ok = f"{exc.__class__.__name__}: {exc}", False
    took = f"{(time.monotonic() - started) * 1000:.0f} ms"
    return step.name, step.expected, got, took, "ok" if ok else "FAILED"


def _print_table(rows: list[tuple[str, str, str, str, str]]) -> None:
    table = [("what happened", "expected", "got", "time", ""), *rows]
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    for row in table:
        print("  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="shieldwall-demo-") as workdir:
        work = Path(workdir)
        origin_log, shield_log, config = work / "origin.log", work / "shield.log", work / "demo.toml"
        config.write_text(DEMO_CONFIG.format(state_dir=work / "state"), encoding="utf-8")
        origin_argv = [sys.executable, "-m", "shieldwall.drill.origin", "--listen", f"{HOST}:0"]
        origin = Child.spawn("the demo origin", origin_argv, origin_log, capture_stdout=True)
        shield: Child | None = None
        try:
            origin.read_announced_port(f"origin listening on {HOST}:", START_TIMEOUT)
            shield_port = free_port()
            shield_argv = [
                sys.executable, "-m", "shieldwall", "run",
                "--upstream", f"http://{HOST}:{origin.port}",
                "--listen", f"{HOST}:{shield_port}",
                "--workers", "1",
                "--config", str(config),
            ]  # fmt: skip
            shield = Child.spawn("the shield", shield_argv, shield_log, port=shield_port)
            shield.wait_accepting(START_TIMEOUT)
            print(f"shieldwall quick demo: origin on {HOST}:{origin.port}, shield on {HOST}:{shield_port}\n")
            rows = [_run(step, shield_port) for step in STEPS]
        except StartError as exc:
            print(f"demo failed: {exc}", file=sys.stderr)
            return 1
        finally:
            if shield is not None:
                shield.stop()
            origin.stop()
    _print_table(rows)
    passed = sum(row[4] == "ok" for row in rows)
    print(f"\n{passed}/{len(rows)} steps behaved as expected.")
    return 0 if passed == len(rows) else 1
