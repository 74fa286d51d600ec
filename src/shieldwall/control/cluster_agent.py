"""The node's link to the cluster, run by the control process when `[cluster] redis` is set.

One asyncio task, never on a request's path. While Redis answers it:
- publishes this node's new bans and lifts and hears the other nodes' (pub/sub), writing them to
  bans/cluster.json for the workers (control/cluster_bans.py); on every (re)connect it first reads the
  cluster's whole ban set back and sends whatever of its own the cluster lacks;
- shares the detector's input: every worker's per-second summary goes into a Redis stream, and the
  cluster's view of the mode is computed from all of them (control/cluster_view.py);
- prunes ended bans and beats a heartbeat, from which every node knows which nodes are alive.
When Redis is lost, the node carries on alone on its own state: its workers keep every ban they had, its
own detector decides the mode, and the loss is logged once, counted, and shown in the status and metrics
(`degraded`). The task reconnects with backoff and resynchronises as above.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Final

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from shieldwall.cluster import ban_wire
from shieldwall.cluster.bans import BanBatch, ClusterBans
from shieldwall.cluster.connection import aclose, async_client
from shieldwall.cluster.keys import Keys
from shieldwall.cluster.shared_view import SharedView
from shieldwall.config.schema import Settings
from shieldwall.control.cluster_bans import NodeBans
from shieldwall.control.cluster_view import ClusterView
from shieldwall.control.state import PIN_FILE, Pin, StateReader, control_dir
from shieldwall.state.ban_store import StateDirError

log = logging.getLogger("shieldwall.cluster")

STEP: Final = 0.05  # seconds between the agent's rounds: new bans go out within this
POLL_FILES_EVERY: Final = 0.25  # seconds between looks at this node's ban files
SECONDS_EVERY: Final = 0.25  # seconds between exchanges of summaries with the stream (the tick is 1 s)
HEARTBEAT_EVERY: Final = 1.0  # also the leader's lease renewal, and the state and pins exchange
SECONDS_QUEUED: Final = 1000  # workers' summaries waiting for Redis at most (older ones are dropped)
PRUNE_EVERY: Final = 10.0
BACKOFF_FIRST: Final = 0.5
BACKOFF_MAX: Final = 5.0
_LOST = (RedisError, OSError, TimeoutError)


@dataclass(slots=True)
class LinkStatus:
    """What the status API, the dashboard and /metrics show of the node's cluster link."""

    node: str
    connected: bool = False
    since: float | None = None  # wall-clock: when the link last came up or went down
    losses: int = 0  # times Redis was lost since the control process started
    bans_published: int = 0
    bans_received: int = 0
    last_error: str = ""
    nodes: list[str] = field(default_factory=list)  # the nodes alive, by their heartbeats (this one too)

    def to_json(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "redis": "connected" if self.connected else "lost",
            "degraded": not self.connected,
            "since": self.since,
            "losses": self.losses,
            "bans_published": self.bans_published,
            "bans_received": self.bans_received,
            "last_error": self.last_error,
            "nodes": self.nodes if self.connected else [],
        }


class ClusterAgent:
    def __init__(self, settings: Settings, view: ClusterView) -> None:
        cluster = settings.cluster
        assert cluster.redis is not None
        self.url = cluster.redis
        self.timeout = cluster.timeout
        self.keys = Keys(cluster.namespace)
        self.status = LinkStatus(cluster.node_name)
        self.bans = NodeBans(settings.server.state_dir)
        self.view = view
        self._pins = StateReader(control_dir(settings.server.state_dir) / PIN_FILE)
        self._pin_seen: bytes | None = None
        self._seconds: list[bytes] = []
        self._decisions: list[tuple[str, dict[str, Any]]] = []  # operators' decisions to send
        self._decided: dict[str, float] = {}  # signature id -> time of the last decision applied
        self._client: aioredis.Redis | None = None

    def decide(self, signature_id: str, decision: str) -> None:
        """An operator on this node pinned, unpinned or rejected a signature (admin/operator.py): the
        other nodes take the decision too, within a second or two."""
        self._decisions.append((signature_id, {"decision": decision, "at": time.time()}))

    def receive(self, payload: bytes) -> bool:
        """A worker's message: True when it was a new ban (now queued for the cluster); a summary is
        queued for the cluster's stream, and False says the node's own detector wants it too."""
        if payload[:1] != ban_wire.BAN_TAG:
            if self.status.connected:
                self._seconds.append(payload)
                del self._seconds[:-SECONDS_QUEUED]
            return False
        try:
            self.bans.note(ban_wire.decode(payload))
        except ValueError as exc:
            log.warning("dropped a damaged ban message: %s", exc)
        return True

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: a session while Redis answers, a backoff while it does not."""
        backoff = BACKOFF_FIRST
        while not stop.is_set():
            try:
                await self._session(stop)
                backoff = BACKOFF_FIRST
            except _LOST as exc:
                self._lost(exc)
            except StateDirError as exc:
                log.error("cannot write the cluster's bans: %s", exc)
            except Exception:  # a bug here must not end the link for good: log it, reconnect, go on
                log.exception("the cluster link failed")
                self._lost(RuntimeError("the cluster link failed (see the log)"))
            await self._close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff)
            backoff = min(BACKOFF_MAX, backoff * 2)
        await self._close()

    async def _session(self, stop: asyncio.Event) -> None:
        client = self._client = async_client(self.url, self.timeout)
        redis_bans = ClusterBans(client, self.keys)
        shared = SharedView(client, self.keys, self.status.node)
        await client.ping()  # fails fast when Redis is away; a Redis Cluster client learns its slots here
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(self.keys.ban_events)
            snapshot = await redis_bans.snapshot(time.time())
            self.bans.adopt(snapshot, replace=True)
            self.bans.poll(time.time(), force=True)
            await shared.read_seconds(_offset())  # from now on
            self._seconds.clear()
            self._up()
            next_files = next_seconds = next_beat = next_prune = 0.0
            while not stop.is_set():
                now, wall = time.monotonic(), time.time()
                if now >= next_files:
                    self.bans.poll(wall)
                    next_files = now + POLL_FILES_EVERY
                await self._publish(redis_bans)
                await self._hear(pubsub)
                self.bans.write(now)
                if now >= next_seconds:
                    await self._share_seconds(shared)
                    next_seconds = now + SECONDS_EVERY
                if now >= next_beat:
                    self.status.nodes = await shared.beat(wall)
                    await self._exchange(shared, now, wall)
                    next_beat = now + HEARTBEAT_EVERY
                if now >= next_prune:
                    await redis_bans.prune(wall)
                    next_prune = now + PRUNE_EVERY
        finally:
            with contextlib.suppress(*_LOST):
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def _publish(self, redis_bans: ClusterBans) -> None:
        while (batch := self.bans.take()) is not None:
            try:
                await redis_bans.publish(batch)
            except BaseException:
                self.bans.give_back(batch)
                raise
            self.status.bans_published += len(batch.bans)

    async def _hear(self, pubsub: Any) -> None:
        """Wait up to STEP for the other nodes' batches; take every one that arrived."""
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=STEP)
        while message is not None:
            batch = BanBatch.from_message(message["data"])
            for problem in batch.problems:
                log.warning("cluster bans from %s: %s", batch.node or "?", problem)
            if batch.node != self.status.node:
                self.bans.adopt(batch)
                self.status.bans_received += len(batch.bans)
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0)

    async def _share_seconds(self, shared: SharedView) -> None:
        """Send this node's workers' summaries; feed everyone's to the cluster detector."""
        if self._seconds:
            batch, self._seconds = self._seconds, []
            await shared.add_seconds(batch, _offset())
        summaries, problems = await shared.read_seconds(_offset())
        for problem in problems:
            log.warning("%s", problem)
        for second in summaries:
            self.view.loop.take(second)

    async def _exchange(self, shared: SharedView, now: float, wall: float) -> None:
        """Once a second: the leader's lease, the leader's state and incidents, and operators' pins."""
        view = self.view
        view.leader = await shared.claim()
        if view.leading:
            if view.outbox_state is not None:
                await shared.publish_state(view.outbox_state)
            while view.outbox_records:
                await shared.publish_incident(view.outbox_records[0])
                view.outbox_records.pop(0)
        else:
            document = await shared.fetch_state()
            if document is not None and document.get("node") == view.leader:
                view.adopt_leader_state(document, now)
            for incident_id in view.wanted_records():
                record = await shared.fetch_incident(incident_id)
                if record is not None:
                    view.copy(record, wall)
        await self._exchange_decisions(shared, wall)
        local = self._pins.changed()
        if local is not None:  # an operator pinned (or unpinned) on this node: the whole cluster takes it
            await shared.publish_pin(local)
        shared_pin = await shared.fetch_pin()
        if shared_pin is not None and shared_pin != self._pin_seen:
            self._pin_seen = shared_pin
            try:
                view.pin(Pin.from_json(shared_pin), now, wall)
            except ValueError as exc:
                log.warning("ignoring the cluster's damaged pin: %s", exc)

    async def _exchange_decisions(self, shared: SharedView, wall: float) -> None:
        """Send this node's signature decisions; apply every node's to the cluster's detector."""
        while self._decisions:
            signature_id, decision = self._decisions[0]
            await shared.decide(signature_id, decision)
            self._decided[signature_id] = decision["at"]  # applied here already (admin/operator.py)
            self._decisions.pop(0)
        signatures = self.view.loop.signatures
        for signature_id, decision in (await shared.decisions()).items():
            at = decision.get("at")
            if not isinstance(at, int | float) or self._decided.get(signature_id, -1.0) >= at:
                continue
            self._decided[signature_id] = float(at)
            action = decision.get("decision")
            if action == "pin":
                signatures.pin(signature_id)
            elif action == "unpin":
                signatures.unpin(signature_id, wall)
            elif action == "reject":
                signatures.reject(signature_id)

    def _up(self) -> None:
        self.status.connected, self.status.since = True, time.time()
        self.view.connected = True
        log.info("connected to the cluster's Redis as node %s", self.status.node)

    def _lost(self, exc: BaseException) -> None:
        self.view.connected, self.view.leader = False, None
        self._seconds.clear()
        self.status.last_error = f"{type(exc).__name__}: {exc}"
        if self.status.connected or self.status.since is None:  # log the loss once, not every retry
            self.status.losses += self.status.connected
            log.error(
                "lost the cluster's Redis (%s): this node protects on its own state until it returns",
                self.status.last_error,
            )
            self.status.connected, self.status.since = False, time.time()

    async def _close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(*_LOST):
                await aclose(client)


def _offset() -> float:
    """This node's wall clock minus its monotonic clock (see cluster/shared_view.py `translate`)."""
    return time.time() - time.monotonic()
