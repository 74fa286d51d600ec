"""Stateful fuzzing of the data plane: random interleavings of client bytes (split anywhere), origin
responses, clock ticks, back-pressure and disconnects. No exception may escape a protocol callback (under
uvloop that would leave a connection hanging), and the books must balance when everything has closed."""

from __future__ import annotations

import asyncio
import tempfile

from fake_transport import FakeTransport
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from shieldwall.config import parse_config
from shieldwall.core.clock import FakeClock
from shieldwall.dataplane.client import ClientConnection
from shieldwall.dataplane.server import ListenerRuntime, ShieldServer
from shieldwall.dataplane.upstream import UpstreamConnection

REQUESTS = [
    b"GET / HTTP/1.1\r\nHost: h\r\n\r\n",
    b"HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n",
    b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"POST /f HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /c HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
    b"PUT /e HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\nok",
    b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
    b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    b"GET /\x00 HTTP/1.1\r\n\r\n",
    b"garbage\r\n\r\n",
]
RESPONSES = [
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
    b"HTTP/1.1 204 No Content\r\n\r\n",
    b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n",
    b"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nX",
    b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
    b"HTTP/1.0 200 OK\r\n\r\nuntil close",
    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok",
    b"NOT HTTP\r\n\r\n",
    b"HTTP/1.1 500 Oops\r\nContent-Length: 100\r\n\r\npartial",
]


class DataPlane(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()
        self.state = tempfile.TemporaryDirectory(prefix="shieldwall-fuzz-")
        cfg = {
            "server": {"state_dir": self.state.name},
            "access_log": {"path": "off"},
            "limits": {"requests_per_second_per_ip": 5, "requests_burst_per_ip": 3, "max_inflight_per_ip": 1},
        }
        self.server = ShieldServer(parse_config(cfg), loop=self.loop, clock=self.clock)
        self.server.pool.acquire = self._acquire  # type: ignore[method-assign]
        self.clients: list[tuple[ClientConnection, FakeTransport]] = []
        self.origins: list[tuple[UpstreamConnection, FakeTransport]] = []

    def _acquire(self, ex) -> None:
        pool = self.server.pool
        while pool.idle:
            conn = pool.idle.pop()
            if conn.usable:
                pool.busy.add(conn)
                conn.start(ex, self.clock.monotonic())
                return
        conn = UpstreamConnection(pool)
        transport = FakeTransport(("127.0.0.1", 8000))
        conn.connection_made(transport)  # type: ignore[arg-type]
        pool.busy.add(conn)
        self.origins.append((conn, transport))
        conn.start(ex, self.clock.monotonic())

    def teardown(self) -> None:
        self.loop.close()
        self.state.cleanup()

    @rule(peer=st.sampled_from(["203.0.113.1", "203.0.113.2", "2001:db8::1"]))
    def connect(self, peer: str) -> None:
        transport = FakeTransport((peer, 1234))
        conn = ClientConnection(
            self.server, ListenerRuntime(self.server.settings.listeners[0], None, b"http")
        )
        conn.connection_made(transport)  # type: ignore[arg-type]
        self.clients.append((conn, transport))

    def _open_clients(self) -> list[tuple[ClientConnection, FakeTransport]]:
        return [(c, t) for c, t in self.clients if not t.closed]

    @precondition(lambda self: self._open_clients())
    @rule(
        data=st.data(),
        raw=st.lists(st.sampled_from(REQUESTS), min_size=1, max_size=3),
        cut=st.integers(0, 400),
    )
    def client_sends(self, data: st.DataObject, raw: list[bytes], cut: int) -> None:
        conn, _ = data.draw(st.sampled_from(self._open_clients()))
        payload = b"".join(raw)
        cut = min(cut, len(payload))
        for piece in (payload[:cut], payload[cut:]):
            if piece and not conn.closing:
                conn.data_received(piece)
        event(
            f"client has {'answers' if conn.transport and bytes(conn.transport.written) else 'no answer yet'}"
        )

    def _busy_origins(self) -> list[tuple[UpstreamConnection, FakeTransport]]:
        return [(c, t) for c, t in self.origins if c.exchange is not None and not t.closed]

    @precondition(lambda self: self._busy_origins())
    @rule(data=st.data(), response=st.sampled_from(RESPONSES), cut=st.integers(0, 120))
    def origin_answers(self, data: st.DataObject, response: bytes, cut: int) -> None:
        conn, transport = data.draw(st.sampled_from(self._busy_origins()))
        cut = min(cut, len(response))
        event("origin answers")
        for piece in (response[:cut], response[cut:]):
            if piece and not transport.closed and transport.protocol is None:
                conn.data_received(piece)
            elif piece and transport.protocol is not None:
                transport.protocol.data_received(piece)  # a tunnel

    @precondition(lambda self: [o for o in self.origins if not o[1].closed])
    @rule(data=st.data())
    def origin_closes(self, data: st.DataObject) -> None:
        conn, transport = data.draw(st.sampled_from([o for o in self.origins if not o[1].closed]))
        transport.closed = True
        (transport.protocol or conn).connection_lost(None)

    @precondition(lambda self: self._open_clients())
    @rule(data=st.data(), how=st.sampled_from(["lost", "pause", "resume"]))
    def client_event(self, data: st.DataObject, how: str) -> None:
        conn, transport = data.draw(st.sampled_from(self._open_clients()))
        if how == "lost":
            transport.closed = True
            conn.connection_lost(ConnectionResetError())
        elif how == "pause":
            conn.pause_writing()
        else:
            conn.resume_writing()

    @rule(seconds=st.sampled_from([0.1, 0.6, 3.0, 11.0, 40.0]))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)
        now = self.clock.monotonic()
        for conn in list(self.server.connections):
            conn.on_tick(now)
        self.server.pool.on_tick(now)

    @invariant()
    def books_balance(self) -> None:
        # every connection the server counts is open, and the caps count exactly those
        open_counted = [c for c, t in self.clients if c.counted]
        assert self.server.caps.open == len(open_counted)
        assert all(c in self.server.connections for c in open_counted)
        inflight = self.server.inflight
        assert inflight is not None
        holding = [c for c, t in self.clients if c.current is not None and c.current.holds_inflight]
        assert inflight.total() == len(holding), "a request slot is held exactly while its exchange lives"
        pool = self.server.pool
        assert not (set(pool.idle) & pool.busy)
        assert all(c.usable for c in pool.idle)

    def close_everything(self) -> None:
        for conn, transport in self.clients:
            if not transport.closed:
                transport.closed = True
                conn.connection_lost(None)


DataPlane.TestCase.settings = settings(max_examples=300, stateful_step_count=30, deadline=None)
TestDataPlane = DataPlane.TestCase


def test_books_are_empty_after_everyone_left() -> None:
    machine = DataPlane()
    try:
        machine.connect("203.0.113.1")
        conn, _ = machine.clients[0]
        conn.data_received(REQUESTS[0] + REQUESTS[3])
        assert machine.origins and machine.origins[0][1].written.startswith(b"GET / HTTP/1.1\r\n")
        machine.close_everything()
        assert machine.server.caps.open == 0 and not machine.server.connections
    finally:
        machine.teardown()
