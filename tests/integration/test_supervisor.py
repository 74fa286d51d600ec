"""The process model end to end: `shieldwall run` with two workers in front of a small origin, all on
loopback. Workers are found as the supervisor's children in /proc; signals are sent by pid."""

from __future__ import annotations

import http.client
import http.server
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shieldwall.dataplane.control_child import CONTROL_COMM
from shieldwall.drill.processes import free_port

pytestmark = pytest.mark.integration

WAIT = 8.0  # upper bound for anything the tests wait for


class _Origin(http.server.ThreadingHTTPServer):
    daemon_threads = True
    slow_started: threading.Event


class _OriginHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Origin

    def do_GET(self) -> None:
        if self.path == "/slow":
            self.server.slow_started.set()
            time.sleep(1.0)
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def tiny_origin() -> Iterator[_Origin]:
    server = _Origin(("127.0.0.1", 0), _OriginHandler)
    server.slow_started = threading.Event()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(WAIT)


def _wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def _children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # exited while we looked
                continue
            if int(stat.rpartition(")")[2].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _comm(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "comm").read_text().strip()
    except OSError:
        return ""


def _config(state_dir: Path, grace: float = 3.0, via: str = "shieldwall") -> str:
    return (
        f'[server]\nshutdown_grace = {grace}\nvia_name = "{via}"\nstate_dir = "{state_dir}"\n\n'
        '[access_log]\npath = "off"\n'
    )


class Shield:
    """A `shieldwall run` subprocess with 2 workers and its stderr, collected line by line."""

    def __init__(self, tmp_path: Path, origin_port: int) -> None:
        self.port = free_port()
        self.config = tmp_path / "shieldwall.toml"
        self.state_dir = tmp_path / "state"
        self.config.write_text(_config(self.state_dir))
        command = [
            sys.executable, "-m", "shieldwall", "run",
            "--upstream", f"http://127.0.0.1:{origin_port}",
            "--listen", f"127.0.0.1:{self.port}",
            "--workers", "2",
            "--config", str(self.config),
        ]  # fmt: skip
        self.proc = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            _wait_until(lambda: len(self.workers()) == 2 and self.get("/")[0] == 200, "two serving workers")
        except BaseException:
            self.stop()
            raise

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def logged(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def workers(self) -> set[int]:
        return {pid for pid in _children(self.proc.pid) if _comm(pid) != CONTROL_COMM}

    def control(self) -> set[int]:
        return {pid for pid in _children(self.proc.pid) if _comm(pid) == CONTROL_COMM}

    def get(self, path: str, source: str = "127.0.0.1") -> tuple[int, str, str]:
        """(status, Via header, body) of one request on a new connection from `source`."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5, source_address=(source, 0))
        try:
            conn.request("GET", path, headers={"Connection": "close"})
            response = conn.getresponse()
            return response.status, response.getheader("Via", ""), response.read().decode()
        finally:
            conn.close()

    def get_all_ok(self, count: int) -> None:
        """`count` requests spread over source prefixes (so both workers get some): all must be 200."""
        for i in range(count):
            status, _, body = self.get("/", f"127.0.{i % 16 + 1}.1")
            assert (status, body) == (200, "ok\n")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(WAIT)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(WAIT)
            self._reader.join(WAIT)
            assert self.proc.stderr is not None
            self.proc.stderr.close()


@pytest.fixture
def shield(tmp_path: Path, tiny_origin: _Origin) -> Iterator[Shield]:
    running = Shield(tmp_path, tiny_origin.server_address[1])
    yield running
    running.stop()
    print("shieldwall stderr:", *running.lines, sep="\n")  # pytest shows it when the test failed


def test_requests_pass_through_two_workers(shield: Shield) -> None:
    shield.get_all_ok(20)
    assert shield.logged(f"listening on 127.0.0.1:{shield.port} → http://127.0.0.1:")
    assert shield.logged("(2 workers, steering=bpf-prefix)")


def test_a_killed_worker_is_replaced_and_requests_keep_succeeding(shield: Shield) -> None:
    before = shield.workers()
    victim, survivor = sorted(before)
    os.kill(victim, signal.SIGKILL)
    shield.get_all_ok(16)  # right away: the victim's share waits in its socket's backlog meanwhile
    _wait_until(lambda: len(shield.workers()) == 2 and victim not in shield.workers(), "a replacement")
    assert survivor in shield.workers()
    assert shield.logged(f"(pid {victim}) was killed by SIGKILL; restarting it now")
    shield.get_all_ok(16)


def test_sighup_with_a_valid_config_rolls_workers_without_failing_a_request(shield: Shield) -> None:
    old = shield.workers()
    results: list[tuple[int, str] | str] = []
    stop = threading.Event()

    def traffic() -> None:
        deadline = time.monotonic() + WAIT
        while not stop.is_set() and time.monotonic() < deadline and len(results) < 2000:
            try:
                status, via, _ = shield.get("/", f"127.0.{len(results) % 16 + 1}.1")
                results.append((status, via))
            except OSError as exc:
                results.append(repr(exc))

    client = threading.Thread(target=traffic)
    client.start()
    try:
        _wait_until(lambda: len(results) >= 20, "traffic before the reload")
        shield.config.write_text(_config(shield.state_dir, via="reloaded"))
        os.kill(shield.proc.pid, signal.SIGHUP)
        _wait_until(lambda: shield.logged("reload complete"), "the reload")
        _wait_until(
            lambda: shield.workers().isdisjoint(old) and len(shield.workers()) == 2, "old workers gone"
        )
        seen = len(results)
        _wait_until(lambda: len(results) >= seen + 20, "traffic after the reload")
    finally:
        stop.set()
        client.join(WAIT)
    failures = [r for r in results if not (isinstance(r, tuple) and r[0] == 200)]
    assert failures == [], f"{len(failures)} of {len(results)} requests failed: {failures[:5]}"
    vias = [r[1] for r in results if isinstance(r, tuple)]
    assert vias[0] == "1.1 shieldwall"
    assert vias[-1] == "1.1 reloaded"


def test_sighup_with_an_invalid_config_keeps_the_running_workers(shield: Shield) -> None:
    before = shield.workers()
    shield.config.write_text("[server]\nshutdown_grace = -1\nspeling = true\n")
    os.kill(shield.proc.pid, signal.SIGHUP)
    _wait_until(lambda: shield.logged("reload failed, the running configuration stays"), "the rejection")
    assert shield.logged("server.speling: unknown key")
    assert shield.logged("server.shutdown_grace:")
    assert shield.workers() == before
    shield.get_all_ok(10)
    assert shield.workers() == before


def test_sigterm_lets_an_in_flight_request_finish_then_exits_0(shield: Shield, tiny_origin: _Origin) -> None:
    outcome: list[object] = []

    def slow_request() -> None:
        try:
            outcome.append(shield.get("/slow"))
        except OSError as exc:
            outcome.append(exc)

    client = threading.Thread(target=slow_request)
    client.start()
    assert tiny_origin.slow_started.wait(WAIT)
    workers = shield.workers()
    shield.proc.send_signal(signal.SIGTERM)
    client.join(WAIT)
    assert outcome == [(200, "1.1 shieldwall", "ok\n")]
    assert shield.proc.wait(WAIT) == 0
    assert shield.logged("SIGTERM: stopping 2 workers")
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
