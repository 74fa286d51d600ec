"""A ShieldServer with fake transports and a FakeClock: one client connection, origin connections
created on demand (see the `rig` and `make_rig` fixtures in conftest.py)."""

from __future__ import annotations

import asyncio
import tempfile

from fake_transport import FakeTransport

from shieldwall.config import parse_config
from shieldwall.core.clock import FakeClock
from shieldwall.dataplane.client import ClientConnection
from shieldwall.dataplane.server import ListenerRuntime, ShieldServer
from shieldwall.dataplane.upstream import UpstreamConnection


class Rig:
    """One server, one client connection, and origin connections created on demand."""

    def __init__(self, config: dict[str, object] | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()
        self.state = tempfile.TemporaryDirectory(prefix="shieldwall-test-")
        cfg = {"access_log": {"path": "off"}, "server": {"state_dir": self.state.name}, **(config or {})}
        self.server = ShieldServer(parse_config(cfg), loop=self.loop, clock=self.clock)
        self.upstreams: list[FakeTransport] = []
        self.server.pool.acquire = self._acquire  # type: ignore[method-assign]
        self.client_t = FakeTransport()
        self.client = self.connect(self.client_t)

    def connect(self, transport: FakeTransport) -> ClientConnection:
        runtime = ListenerRuntime(self.server.settings.listeners[0], None, b"http")
        conn = ClientConnection(self.server, runtime)
        conn.connection_made(transport)  # type: ignore[arg-type]
        return conn

    def _acquire(self, ex) -> None:  # an idle pooled connection is always there
        pool = self.server.pool
        if pool.idle:
            conn = pool.idle.pop()
        else:
            conn = UpstreamConnection(pool)
            t = FakeTransport(("127.0.0.1", 8000))
            conn.connection_made(t)  # type: ignore[arg-type]
            self.upstreams.append(t)
        pool.busy.add(conn)
        conn.start(ex, self.clock.monotonic())

    @property
    def up(self) -> FakeTransport:
        return self.upstreams[-1]

    def origin_says(self, data: bytes, index: int = -1) -> None:
        conn = [c for c in self.server.pool.busy if c.transport is self.upstreams[index]]
        assert conn, "no busy upstream connection on that transport"
        conn[0].data_received(data)

    def close(self) -> None:
        self.loop.close()
        self.state.cleanup()
