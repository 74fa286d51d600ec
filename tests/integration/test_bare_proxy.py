"""benchmarks/bare_proxy.py, the floor `make bench` measures beside nginx and shieldwall: it must do the
work the benchmark credits it with (relay the origin's answer over kept connections, refuse over its
limit with a 429 that keeps the connection, close after `Connection: close`), or its row means nothing."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers.procs import ServerProcess, start_origin, stop
from helpers.rawhttp import Connection
from shieldwall.drill.processes import free_port

BARE_PROXY = Path(__file__).resolve().parents[2] / "benchmarks" / "bare_proxy.py"


@pytest.fixture
def origin(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = start_origin(tmp_path)
    yield proc
    stop(proc)


def start_bare(tmp_path: Path, origin: ServerProcess, *extra: str) -> ServerProcess:
    port = free_port()
    argv = [sys.executable, str(BARE_PROXY), "--listen", str(port), "--upstream", str(origin.port), *extra]
    proc = ServerProcess.spawn("bare", argv, tmp_path / f"bare-{port}.stderr", port=port)
    proc.wait_accepting(15.0)
    return proc


def test_relays_the_origins_answers_over_one_kept_connection(tmp_path: Path, origin: ServerProcess) -> None:
    bare = start_bare(tmp_path, origin)
    try:
        with Connection(origin.address) as conn:
            direct = conn.request("GET", "/")
        with Connection(bare.address) as conn:
            answers = [conn.request("GET", "/") for _ in range(3)]
        assert [a.status for a in answers] == [200, 200, 200]
        assert {a.body for a in answers} == {direct.body}
        assert all(a.header("connection") == "keep-alive" for a in answers)
        with Connection(bare.address) as conn:
            last = conn.request("GET", "/", headers=[("Connection", "close")])
            assert last.status == 200 and last.header("connection") == "close"
            assert conn.peer_closed(within=2.0)
    finally:
        stop(bare)


def test_over_its_limit_a_client_gets_429_and_keeps_its_connection(
    tmp_path: Path, origin: ServerProcess
) -> None:
    bare = start_bare(tmp_path, origin, "--limit-rps", "0.1")
    try:
        with Connection(bare.address) as conn:
            statuses = [conn.request("GET", "/").status for _ in range(4)]
        assert statuses == [200, 429, 429, 429]
    finally:
        stop(bare)
