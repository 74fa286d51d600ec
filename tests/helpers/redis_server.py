"""A real redis-server on a free loopback port, started and stopped by the tests themselves (never the
machine's own Redis on 6379). `make test` installs Debian's redis-server when it is missing.

Nothing is kept on disk (`--save ""`, no AOF), so a restart on the same port starts empty, which is what
the fault tests want: a Redis that comes back without what the shields wrote before it died."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from shieldwall.drill.processes import Child, free_port

READY_TIMEOUT = 10.0


class RedisServer:
    def __init__(self, workdir: Path, extra: tuple[str, ...] = ()) -> None:
        """`extra`: more redis-server arguments (e.g. to run as a Redis Cluster node)."""
        self.extra = extra
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: run `make test`, which installs it")
        self.binary = binary
        self.workdir = workdir
        self.port = free_port()
        self.child: Child | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        argv = [
            self.binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no",
            "--dir", str(self.workdir), "--protected-mode", "yes", "--loglevel", "warning", *self.extra,
        ]  # fmt: skip
        self.child = Child.spawn("redis", argv, self.workdir / f"redis-{self.port}.log", port=self.port)
        self.child.wait_until(self.pings, READY_TIMEOUT, "PING answered")

    def pings(self) -> bool:
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1.0, socket_connect_timeout=1.0)

    def pause(self) -> None:
        """SIGSTOP (by PID): Redis hangs, connections open and silent, the nastiest way to lose it."""
        assert self.child is not None
        os.kill(self.child.pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self.child is not None
        os.kill(self.child.pid, signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL (by PID): Redis dies as in a crash, with no chance to say goodbye to its clients."""
        if self.child is not None:
            self.child.popen.kill()
            self.child.popen.wait(10)
            self.stop()

    def stop(self) -> None:
        """SIGTERM (by PID), as an operator's restart would; `start` again reuses the port."""
        if self.child is not None:
            if self.child.popen.poll() is None:  # a paused server could not take its SIGTERM
                os.kill(self.child.pid, signal.SIGCONT)
            self.child.stop()
            self.child = None


@pytest.fixture
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A fresh, empty redis-server for one test."""
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.stop()
