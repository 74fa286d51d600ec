"""ShieldServer: one worker's listeners, client connections, upstream pool, sweeper and access log."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from shieldwall.admission.controller import Ticket
from shieldwall.config.client_data_schema import open_client_data
from shieldwall.config.schema import Listener, Settings
from shieldwall.control.state import ControlState
from shieldwall.core.clock import Clock, SystemClock
from shieldwall.dataplane.accesslog import AccessLog
from shieldwall.dataplane.cache_shield import CacheShield
from shieldwall.dataplane.challenges import Challenges
from shieldwall.dataplane.client import ClientConnection
from shieldwall.dataplane.exchange import Exchange
from shieldwall.dataplane.mode_effects import ModeEffects
from shieldwall.dataplane.origin_door import OriginDoor
from shieldwall.dataplane.telemetry import WorkerTelemetry
from shieldwall.dataplane.upstream import UpstreamPool
from shieldwall.dataplane.worker_bans import WorkerBans
from shieldwall.limiter.concurrency import OpenCounts
from shieldwall.limiter.connection_caps import ConnectionCaps
from shieldwall.limiter.gcra import Gcra
from shieldwall.net.client_identity import normalise_ip
from shieldwall.net.networks import NetworkSet
from shieldwall.net.proxy_protocol import ProxyProtocolError, parse_proxy_header
from shieldwall.policy.compile import compile_policy

if TYPE_CHECKING:
    from shieldwall.dataplane.cluster_limits import ClusterLimits

MAX_TARPITTED = 1000  # tarpitted refusals held at once per worker
log = logging.getLogger("shieldwall.dataplane")

SWEEP_INTERVAL = 0.5  # seconds between deadline checks; every deadline is enforced within this slack
_PROXY_HEADER_MAX = 536  # PROXY v2: 16-byte preamble + the longest address block we accept
_ACCEPT_BATCH = 64


@dataclass(slots=True)
class ListenerRuntime:
    settings: Listener
    tls_context: ssl.SSLContext | None
    scheme: bytes


class _PendingProxyHeader:
    """An accepted socket on a PROXY-protocol listener whose header has not fully arrived.

    The header is read with MSG_PEEK and then consumed exactly, so TLS (when the listener terminates it)
    starts on the very next byte — which a Protocol reading whole segments could not guarantee.
    """

    def __init__(self, server: ShieldServer, sock: socket.socket, listener: ListenerRuntime) -> None:
        self.server = server
        self.sock = sock
        self.listener = listener
        self.deadline = server.clock.monotonic() + server.settings.limits.header_timeout

    def readable(self) -> None:
        try:
            peeked = self.sock.recv(_PROXY_HEADER_MAX, socket.MSG_PEEK)
        except BlockingIOError:
            return
        except OSError:
            self.drop()
            return
        if not peeked:
            self.drop()
            return
        try:
            header = parse_proxy_header(peeked)
        except ProxyProtocolError as exc:
            log.info("bad PROXY header from %s: %s", self.sock.getpeername()[0], exc)
            self.drop()
            return
        if header is None:
            if len(peeked) >= _PROXY_HEADER_MAX:
                self.drop()
            return
        self.sock.recv(header.consumed)
        self.server.loop.remove_reader(self.sock.fileno())
        self.server.pending_proxy.discard(self)
        reported = normalise_ip(header.src_addr) if header.src_addr else None
        self.server.adopt(self.sock, self.listener, reported)

    def drop(self) -> None:
        self.server.pending_proxy.discard(self)
        with contextlib.suppress(ValueError, OSError):
            self.server.loop.remove_reader(self.sock.fileno())
        self.sock.close()


class ShieldServer:
    def __init__(
        self,
        settings: Settings,
        *,
        loop: asyncio.AbstractEventLoop,
        clock: Clock | None = None,
        worker_id: int = 0,
        telemetry: socket.socket | None = None,
    ) -> None:
        """`telemetry`: the socket to the control process (None: a server alone, as in unit tests)."""
        self.settings = settings
        self.loop = loop
        self.clock = clock or SystemClock()
        self.worker_id = worker_id
        limits = settings.limits
        self.caps = ConnectionCaps(
            limits.max_connections, limits.max_connections_per_ip, limits.max_connections_per_prefix
        )
        self.trusted = NetworkSet(settings.client_identity.trusted_proxies)
        self.via = b"1.1 " + settings.server.via_name.encode()
        self.request_limiter = (
            Gcra(limits.requests_per_second_per_ip, limits.requests_burst_per_ip, limits.tracked_clients)
            if limits.requests_per_second_per_ip
            else None
        )
        self.challenges = Challenges(settings, self.clock, loop)
        self.telemetry = WorkerTelemetry(
            settings, worker_id, self.clock.monotonic(), telemetry, self.clock.wall
        )
        self.mode_effects = ModeEffects(settings.detector)
        self.policy = compile_policy(
            settings.rules,
            tracked_keys=limits.tracked_clients,
            gate=self.challenges,
            ipdata=open_client_data(settings.client_data),  # read before the fork, usually: shared
        )
        tallies = self.policy.cluster_tallies()  # scope = "cluster" limits, synced through Redis
        self.cluster_limits: ClusterLimits | None = None
        if tallies:  # imported only then: redis-py costs a worker ~10 MB it has no use for otherwise
            from shieldwall.dataplane.cluster_limits import ClusterLimits  # noqa: PLC0415

            self.cluster_limits = ClusterLimits(settings.cluster, tallies, self.clock, worker_id)
        self.bans = WorkerBans(settings, worker_id, self.clock.wall())
        self.inflight = OpenCounts(limits.max_inflight_per_ip) if limits.max_inflight_per_ip else None
        self.door = OriginDoor(settings.admission) if settings.admission.enabled else None
        self.cache = (
            CacheShield(settings.cache, self.clock, self.door, self.via) if settings.cache.enabled else None
        )
        self.pool = UpstreamPool(self)
        self.access_log = AccessLog(settings.access_log)
        self.connections: set[ClientConnection] = set()
        self.pending_proxy: set[_PendingProxyHeader] = set()
        self.tarpitted: set[Exchange] = set()  # refusals held back by tarpit rules
        self.bans_made = 0  # automatic bans this worker made (for the incident timeline's ban waves)
        self.stats_refused: Counter[str] = Counter()  # why connections/requests were refused (telemetry)
        self.draining = False
        self._servers: list[asyncio.Server] = []
        self._proxy_sockets: list[socket.socket] = []
        self._sweeper: asyncio.TimerHandle | None = None

    # ---------------------------------------------------------------- starting and stopping

    async def start(self, sockets: Sequence[tuple[Listener, socket.socket]]) -> None:
        """Begin accepting on already-bound, listening sockets (one per listener)."""
        for listener, sock in sockets:
            index = self.settings.listeners.index(listener)
            ctx = None
            if listener.tls:
                from shieldwall.dataplane.tls import build_server_context  # noqa: PLC0415 (loads cryptography)

                ctx = build_server_context(
                    listener.certificates, config_path=f"listeners[{index}].certificates"
                )
            runtime = ListenerRuntime(listener, ctx, b"https" if ctx else b"http")
            if listener.proxy_protocol:
                sock.setblocking(False)
                self.loop.add_reader(sock.fileno(), self._accept_proxied, sock, runtime)
                self._proxy_sockets.append(sock)
                continue
            server = await self.loop.create_server(
                lambda rt=runtime: ClientConnection(self, rt),
                sock=sock,
                ssl=ctx,
                ssl_handshake_timeout=self.settings.limits.tls_handshake_timeout if ctx else None,
                backlog=4096,
            )
            self._servers.append(server)
        self._sweeper = self.loop.call_later(SWEEP_INTERVAL, self._sweep)
        if self.cluster_limits is not None:
            self.cluster_limits.start(self.loop)

    def stop_accepting(self) -> None:
        """Stop taking new connections; in-flight ones go on."""
        for server in self._servers:
            server.close()
        self._servers.clear()
        for sock in self._proxy_sockets:
            self.loop.remove_reader(sock.fileno())
        self._proxy_sockets.clear()

    async def drain(self, grace: float) -> None:
        """Wait up to `grace` s for in-flight requests to finish, then close every connection."""
        self.draining = True
        for conn in list(self.connections):
            # Idle keep-alive connections close now (clients retry on those); a connection that has not
            # sent its first request yet is served, and its response says Connection: close.
            if conn.current is None and not conn.pipeline and conn.requests:
                conn.close()
        deadline = self.clock.monotonic() + grace
        while self.connections and self.clock.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for conn in list(self.connections):
            conn.abort()
        for pending in list(self.pending_proxy):
            pending.drop()
        self.pool.close_all()
        if self._sweeper is not None:
            self._sweeper.cancel()
        if self.cluster_limits is not None:
            await self.cluster_limits.close()
        self.bans.sync(self.clock.wall(), final=True)  # bans made since the last save are kept
        self.access_log.close()

    # ---------------------------------------------------------------- accepting

    def _accept_proxied(self, lsock: socket.socket, listener: ListenerRuntime) -> None:
        for _ in range(_ACCEPT_BATCH):
            try:
                sock, _addr = lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.warning("accept failed: %s", exc)
                return
            sock.setblocking(False)
            pending = _PendingProxyHeader(self, sock, listener)
            self.pending_proxy.add(pending)
            self.loop.add_reader(sock.fileno(), pending.readable)

    def adopt(self, sock: socket.socket, listener: ListenerRuntime, reported_ip: str | None) -> None:
        """Hand an accepted socket (PROXY header consumed) to a ClientConnection, with TLS if configured."""
        ctx = listener.tls_context

        async def connect() -> None:
            try:
                await self.loop.connect_accepted_socket(
                    lambda: ClientConnection(self, listener, reported_ip),
                    sock,
                    ssl=ctx,
                    ssl_handshake_timeout=self.settings.limits.tls_handshake_timeout if ctx else None,
                )
            except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as exc:
                log.debug("connection from %s failed during setup: %s", reported_ip, exc)
                sock.close()

        self.loop.create_task(connect())

    def offence(self, ip: str, prefix: str) -> bool:
        """A request of this client was refused; True when that earned it a ban."""
        ban = self.bans.offence(ip, prefix, self.clock.wall())
        if ban is None:
            return False
        self.bans_made += 1
        self.telemetry.ban(ban)
        return True

    # ---------------------------------------------------------------- admission control

    def give_back(self, ticket: Ticket, ex: Exchange) -> None:
        """An exchange is done with its admission ticket: resume the exchanges it lets in."""
        assert self.door is not None
        admitted = self.door.give_back(ticket, ex, self.clock.monotonic())
        while admitted:
            ticket = admitted.pop(0)
            waiting = cast(Exchange, ticket.context)
            if waiting.cancelled:  # its client left since: the slot goes to the next one
                admitted += self.door.give_back(ticket, waiting, self.clock.monotonic())
                continue
            waiting.ticket = ticket
            self.pool.acquire(waiting)

    def tarpit(self, ex: Exchange) -> bool:
        """Hold a tarpitted refusal until its time (the sweeper answers it); False when MAX_TARPITTED are
        held already: then it is answered at once (a tarpit must not become a way to exhaust us)."""
        if len(self.tarpitted) >= MAX_TARPITTED:
            return False
        self.tarpitted.add(ex)
        return True

    def admission_ended(self, ticket: Ticket) -> None:
        """A queued exchange was shed (displaced, or waited past its deadline): 503 + Retry-After."""
        ex = cast(Exchange, ticket.context)
        if not ex.cancelled:
            ex.client.shed(ex, ticket)

    def stats(self) -> dict[str, int]:
        """The worker's counters (totals since it started) and gauges, for the operator's views."""
        figures = {f"refused.{reason}": count for reason, count in self.stats_refused.items()}
        figures["connections.open"] = len(self.connections)
        figures["bans.entries"] = len(self.bans.table)
        figures["bans.made"] = self.bans_made
        figures.update({f"signature.{sig}": count for sig, count in self.mode_effects.matched.items()})
        figures["upstream.pool_busy"] = len(self.pool.busy)
        figures["upstream.pool_idle"] = len(self.pool.idle)
        if self.door is not None:
            controller = self.door.controller
            figures["admission.limit"] = controller.limit
            figures["admission.in_flight"] = controller.in_flight
            figures["admission.queued"] = controller.queued
        if self.cache is not None:
            figures.update({f"cache.{key}": value for key, value in self.cache.stats().items()})
        if self.cluster_limits is not None:
            figures.update(self.cluster_limits.stats())
        return figures

    def _apply_control_state(self, state: ControlState) -> None:
        before = self.mode_effects.state
        self.mode_effects.apply(state)
        self.challenges.level = self.mode_effects.level
        if self.door is not None and self.mode_effects.active:
            # Requests that queued for the origin before the mode rose (or a signature appeared) are
            # judged again now: a flood must not be served from the queue it filled.
            for ticket in self.door.controller.waiting():
                waiting = cast(Exchange, ticket.context)
                waiting.client.judge_again(waiting)
        if state.mode is not before.mode and self.worker_id == 0:  # one worker says it for all
            log.warning("mode %s → %s", before.mode.value, state.mode.value)

    # ---------------------------------------------------------------- periodic work

    def _sweep(self) -> None:
        now = self.clock.monotonic()
        try:
            for conn in list(self.connections):
                conn.on_tick(now)
            for pending in list(self.pending_proxy):
                if now > pending.deadline:
                    pending.drop()
            self.pool.on_tick(now)
            if self.tarpitted:
                for ex in [ex for ex in self.tarpitted if ex.cancelled or now >= ex.hold_until]:
                    self.tarpitted.discard(ex)
                    ex.client.end_tarpit(ex)
            if self.door is not None:
                for ticket in self.door.controller.expire(now):
                    self.admission_ended(ticket)
            if self.cache is not None:
                self.cache.on_tick(now)
            state = self.telemetry.on_tick(now, self.stats)
            if state is not None:
                self._apply_control_state(state)
            self.bans.sync(self.clock.wall())
            self.access_log.flush()
        finally:
            self._sweeper = self.loop.call_later(SWEEP_INTERVAL, self._sweep)
