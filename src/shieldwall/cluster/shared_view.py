"""The cluster's shared view in Redis: every worker's per-second summary, the leader's lease, the state the
leader decided, its incidents, and operators' pins. The Redis operations only; control/cluster_agent.py
decides when to call them, control/cluster_view.py what the answers mean.

Per-second summaries cross machines whose monotonic clocks are unrelated: each entry carries its node's
`offset` (wall clock minus monotonic clock when it was sent), and the reader moves the summary's times
onto its own monotonic clock (`translate`). That assumes the nodes' wall clocks agree (NTP), to well
under the detector's 3 s tolerance for late summaries.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, replace
from typing import Any, Final

import redis.asyncio as aioredis

from shieldwall.cluster.keys import Keys
from shieldwall.detector.counters import WorkerSecond
from shieldwall.state.incident_store import Record

# Summaries are kept this long in the stream (nodes read it every 0.25 s; one that reconnects starts from
# its end), trimmed by entry ID, which is Redis's clock: 10 s of 80 workers at ~30 KB is ~24 MB.
STREAM_KEPT_MS: Final = 10_000
INCIDENT_TTL: Final = 86_400  # seconds the leader's incident records stay for followers to copy
NODE_GONE: Final = 5.0  # seconds without a heartbeat after which a node no longer counts as alive
DECISIONS_TTL: Final = 86_400  # seconds operators' signature decisions stay after the last one
LEASE_MS: Final = 3000  # the leader's lease: another node takes over this long after the leader stops
STATE_TTL_MS: Final = 5000  # the leader's published state goes stale (and followers decide alone) after

# KEYS: the lease. ARGV: this node, the lease in ms. Returns the leader after the call.
_CLAIM: Final = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return ARGV[1] end
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return holder
"""


def translate(second: WorkerSecond, sender_offset: float, own_offset: float) -> WorkerSecond:
    """`second` (timed on the sender's monotonic clock) on this node's monotonic clock."""
    shift = sender_offset - own_offset
    return replace(second, started=second.started + shift, ended=second.ended + shift)


class SharedView:
    def __init__(self, client: aioredis.Redis, keys: Keys, node: str) -> None:
        self.client = client
        self.keys = keys
        self.node = node
        self._claim = client.register_script(_CLAIM)
        self.last_id = "$"  # the stream read so far: "$" is "from now on"
        self._added_ms = 0  # Redis's clock at this node's last addition (the ID it gave the entry)

    async def add_seconds(self, payloads: list[bytes], offset: float) -> None:
        """This node's workers' summaries, in one round trip; and the stream trimmed to STREAM_KEPT_MS
        before the previous addition (by ID, so by Redis's clock, whatever the nodes' clocks say)."""
        async with self.client.pipeline(transaction=False) as pipe:
            for payload in payloads:
                fields: Any = {"node": self.node, "offset": repr(offset), "data": payload}
                pipe.xadd(self.keys.seconds, fields)
            if self._added_ms:
                pipe.xtrim(self.keys.seconds, minid=str(self._added_ms - STREAM_KEPT_MS), approximate=True)
            replies = await pipe.execute()
        if payloads:
            newest = replies[len(payloads) - 1]
            self._added_ms = int(
                (newest.decode() if isinstance(newest, bytes) else str(newest)).split("-")[0]
            )

    async def read_seconds(
        self, own_offset: float, count: int = 1000
    ) -> tuple[list[WorkerSecond], list[str]]:
        """Every summary added since the last read (this node's own too), on this node's clock; and
        problems with damaged ones. (Each entry also names its node, for an operator's XRANGE.)"""
        client: Any = self.client  # redis-py's stream replies are typed loosely: they are parsed here
        if self.last_id == "$":  # the first read only learns where the stream ends
            newest = await client.xrevrange(self.keys.seconds, count=1)
            self.last_id = newest[0][0].decode() if newest else "0-0"
            return [], []
        replies = await client.xread({self.keys.seconds: self.last_id}, count=count)
        summaries: list[WorkerSecond] = []
        problems: list[str] = []
        for _stream, entries in replies or ():
            for entry_id, fields in entries:
                self.last_id = entry_id.decode()
                try:
                    second = WorkerSecond.from_bytes(fields[b"data"])
                    offset = float(fields[b"offset"])
                    summaries.append(translate(second, offset, own_offset))
                except (KeyError, ValueError, TypeError) as exc:
                    problems.append(f"a damaged summary in the stream: {exc}")
        return summaries, problems

    async def claim(self) -> str | None:
        """Take or keep the leader's lease; the leader's name after the call (this node's if it leads)."""
        holder = await self._claim(keys=[self.keys.leader], args=[self.node, LEASE_MS])
        return holder.decode() if isinstance(holder, bytes) else None

    async def publish_state(self, document: dict[str, Any]) -> None:
        await self.client.set(self.keys.state, json.dumps(document), px=STATE_TTL_MS)

    async def fetch_state(self) -> dict[str, Any] | None:
        data = await self.client.get(self.keys.state)
        if data is None:
            return None
        document = json.loads(data)
        return document if isinstance(document, dict) else None

    async def publish_incident(self, record: Record) -> None:
        await self.client.set(self.keys.incident(record.id), json.dumps(asdict(record)), ex=INCIDENT_TTL)

    async def fetch_incident(self, incident_id: str) -> Record | None:
        data = await self.client.get(self.keys.incident(incident_id))
        if data is None:
            return None
        return Record(**json.loads(data))

    async def publish_pin(self, pin: bytes) -> None:
        await self.client.set(self.keys.pin, pin)

    async def fetch_pin(self) -> bytes | None:
        data = await self.client.get(self.keys.pin)
        return data if isinstance(data, bytes) else None

    async def decide(self, signature_id: str, decision: dict[str, Any]) -> None:
        """An operator's decision on a signature, for every node (the leader's detector applies it)."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hset(self.keys.signature_decisions, signature_id, json.dumps(decision))
            pipe.expire(self.keys.signature_decisions, DECISIONS_TTL)
            await pipe.execute()

    async def decisions(self) -> dict[str, dict[str, Any]]:
        """Every signature's last decision (damaged entries are left out)."""
        raw = await self.client.hgetall(self.keys.signature_decisions)
        decisions = {}
        for signature_id, data in raw.items():
            with contextlib.suppress(ValueError):
                decision = json.loads(data)
                if isinstance(decision, dict):
                    key = signature_id.decode() if isinstance(signature_id, bytes) else signature_id
                    decisions[key] = decision
        return decisions

    async def beat(self, now: float) -> list[str]:
        """This node's heartbeat; the nodes whose heartbeat is at most NODE_GONE old, sorted (heartbeats
        older than an hour are dropped). `now`: wall-clock seconds (the nodes' clocks agree, by NTP)."""
        async with self.client.pipeline(transaction=False) as pipe:
            pipe.zadd(self.keys.nodes, {self.node: now})
            pipe.zremrangebyscore(self.keys.nodes, "-inf", now - 3600)
            pipe.zrangebyscore(self.keys.nodes, now - NODE_GONE, "+inf")
            *_, names = await pipe.execute()
        return sorted(name.decode() if isinstance(name, bytes) else str(name) for name in names)
