"""shieldwall.drill.processes with tiny `python -c` children on loopback: a server is seen ready, a
dead or late one fails with its log, and stop() leaves nothing behind in the child's session."""

from __future__ import annotations

import os
import select
import signal
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from shieldwall.drill.processes import Child, StartError, accepts, free_port

# Every child ends by itself within 30 s even if a test run is killed before it can stop them.
LISTEN = """
import socket, sys, time
sock = socket.socket()
sock.bind(("127.0.0.1", int(sys.argv[1])))
sock.listen()
print(f"listening on 127.0.0.1:{sock.getsockname()[1]}", flush=True)
time.sleep(30)
"""
DIE = "import sys; sys.exit('no config file, giving up')"
STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
worker = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
time.sleep(30)
"""

Spawn = Callable[..., Child]


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawn]:
    """Start `python -c CODE ARGS...`; every child is stopped when the test ends."""
    children: list[Child] = []

    def start(code: str, *args: str, port: int = 0, capture_stdout: bool = False) -> Child:
        log = tmp_path / f"child-{len(children)}.log"
        argv = [sys.executable, "-c", code, *args]
        child = Child.spawn("child", argv, log, port=port, capture_stdout=capture_stdout)
        children.append(child)
        return child

    yield start
    for child in children:
        child.stop(grace=0.5)


def test_a_listening_child_is_ready_and_stops_on_sigterm(spawn: Spawn) -> None:
    port = free_port()
    child = spawn(LISTEN, str(port), port=port)
    child.wait_accepting(timeout=10.0)
    assert child.processes() == [child.pid]
    child.stop()
    assert child.popen.returncode == -signal.SIGTERM
    assert child.processes() == []
    assert not accepts(*child.address)


def test_the_port_a_child_announces_is_read_from_its_first_line(spawn: Spawn) -> None:
    child = spawn(LISTEN, "0", capture_stdout=True)
    child.read_announced_port("listening on 127.0.0.1:", timeout=10.0)
    assert child.port > 0
    assert accepts(*child.address)


def test_a_child_that_dies_fails_with_its_status_and_log(spawn: Spawn) -> None:
    child = spawn(DIE, port=free_port())
    with pytest.raises(StartError, match=r"(?s)child did not start: exited with status 1\n.*no config file"):
        child.wait_accepting(timeout=10.0)


def test_a_child_that_is_not_ready_in_time_fails_and_is_stopped(spawn: Spawn) -> None:
    child = spawn(LISTEN, "0")
    with pytest.raises(StartError, match=r"no miracle within 0\.1 s"):
        child.wait_until(lambda: False, timeout=0.1, what="miracle")
    assert child.popen.returncode is not None


def test_stop_kills_a_child_ignoring_sigterm_and_what_it_left_in_its_session(spawn: Spawn) -> None:
    child = spawn(STUBBORN)
    child.wait_until(lambda: len(child.processes()) == 2, timeout=10.0, what="worker")
    worker = next(pid for pid in child.processes() if pid != child.pid)
    worker_fd = os.pidfd_open(worker)  # readable once the worker has ended: no polling, no sleep
    try:
        child.stop(grace=0.2)
        assert child.popen.returncode == -signal.SIGKILL
        assert select.select([worker_fd], [], [], 5.0)[0], "the worker outlived stop()"
    finally:
        os.close(worker_fd)
    assert child.processes() == []


def test_free_port_refuses_a_non_loopback_address() -> None:
    with pytest.raises(ValueError, match="not a loopback"):
        free_port("192.0.2.1")
