"""Which mode, signatures and incident a clustered node applies each second, and which incidents it keeps.

Every node runs two detectors (two ControlLoops): its own, fed by its workers alone, and the cluster's,
fed by every node's workers through the Redis stream (control/cluster_agent.py puts each summary in
`loop`). Both run every second, so both keep their baselines warm. Then, by the node's role:

- leader (it holds the lease in Redis): applies the cluster detector's state, keeps the cluster's
  incident (one per attack for the whole cluster, not one per node), mines the signatures, raises the
  alerts, and publishes the state and the incident's stored record for the others;
- follower: applies the leader's published state (so every node applies the same signatures), falling
  back to its own cluster detector's decision while that state is stale; it keeps a copy of the
  leader's incident records, so `shieldwall report` and the admin API work on any node;
- Redis lost (degraded): the node's own detector decides and keeps its own incidents, as a node
  without `[cluster]` does, until Redis returns.

A failover mid-attack hands the incident to the new leader's cluster detector, which saw the same
summaries but names its incident itself: the attack may then be in two records.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any, Final

from shieldwall.control.incident_facts import FactsBook
from shieldwall.control.loop import ControlLoop, Tick
from shieldwall.control.state import ControlState, Pin
from shieldwall.state.incident_store import IncidentStoreError, Record, shared

log = logging.getLogger("shieldwall.cluster")

STATE_FRESH: Final = 3.0  # seconds a leader's published state is applied after it was fetched
INCIDENTS_SHOWN: Final = 5  # the leader's latest incident versions named in its published state


def version(record: Record) -> str:
    """A short digest of a stored incident: a follower copies it again when it changes."""
    return hashlib.blake2b(f"{record.document}\0{record.facts}".encode(), digest_size=8).hexdigest()


class ClusterView:
    def __init__(self, loop: ControlLoop, node: str, state_dir: Path) -> None:
        self.loop = loop
        self.node = node
        self.state_dir = state_dir
        self.connected = False
        self.leader: str | None = None
        self.leader_state: ControlState | None = None
        self.leader_incidents: dict[str, str] = {}  # id -> version, as the leader published them
        self.fetched_at = -STATE_FRESH  # monotonic time the leader's state was last fetched
        self.source = "local"  # whose decision the node applies: "local", "cluster", "leader"
        self.outbox_state: dict[str, Any] | None = None  # the leader's state, for the agent to publish
        self.outbox_records: list[Record] = []  # the leader's incident records, for the agent to publish
        self.mirrored: dict[str, str] = {}  # id -> version copied (follower) or published (leader)
        self.applied: ControlState | None = None  # what the node applies now (the status shows it)

    @property
    def leading(self) -> bool:
        return self.connected and self.leader == self.node

    def pin(self, pin: Pin, now: float, now_wall: float) -> None:
        """An operator's pin (made on any node): the cluster detector takes it too."""
        self.loop.pin(pin, now, now_wall)

    def tick(
        self, local: Tick, local_state: ControlState, local_facts: FactsBook, now: float, now_wall: float
    ) -> Tick:
        """The Tick the process acts on (writes its state, logs and saves its events and incidents).
        `local_facts`: the node's own detector's, which start afresh when an incident it did not keep
        closes."""
        cluster = self.loop.tick(now, now_wall)
        if not self.connected:
            self.source = "local"
            return self._apply(local_state, local)
        if local.closed:
            local_facts.discard()
        if self.leading:
            self.source = "cluster"
            return self._apply(self.loop.state, cluster)
        fresh = self.leader_state is not None and now - self.fetched_at <= STATE_FRESH
        self.source = "leader" if fresh else "cluster"
        state = self.leader_state if fresh and self.leader_state is not None else self.loop.state
        return self._apply(state, Tick(None))

    def _apply(self, state: ControlState, tick: Tick) -> Tick:
        before = self.applied
        self.applied = state
        changed = before is None or (before.mode, before.pinned, before.incident, before.signatures) != (
            state.mode,
            state.pinned,
            state.incident,
            state.signatures,
        )
        tick.state = state if changed else None
        return tick

    def after_save(self, tick: Tick) -> None:
        """Leader: after the process saved the tick's incidents, queue their records for the others and
        the state that names them. Follower: copy the leader's records the agent fetched (`copy`)."""
        if not self.leading:
            return
        ids = [incident.id for incident in tick.closed]
        if tick.open is not None:
            ids.append(tick.open.id)
        store = shared(self.state_dir)
        for incident_id in ids:
            try:
                record = store.get(incident_id)
            except IncidentStoreError as exc:
                log.error("cannot read incident %s back to share it: %s", incident_id, exc)
                continue
            if record is not None and self.mirrored.get(incident_id) != version(record):
                self.mirrored[incident_id] = version(record)
                self.outbox_records.append(record)
        latest = dict(list(self.mirrored.items())[-INCIDENTS_SHOWN:])
        state = self.applied or self.loop.state
        self.outbox_state = {"node": self.node, "state": state.to_json().decode(), "incidents": latest}

    def adopt_leader_state(self, document: dict[str, Any], now: float) -> None:
        """The leader's published state, as the agent fetched it (a follower applies it for a while)."""
        try:
            self.leader_state = ControlState.from_json(str(document["state"]).encode())
            incidents = document.get("incidents", {})
            self.leader_incidents = {str(k): str(v) for k, v in incidents.items()}
        except (KeyError, ValueError, AttributeError, TypeError, json.JSONDecodeError) as exc:
            log.warning("ignoring the leader's damaged state: %s", exc)
            return
        self.fetched_at = now

    def wanted_records(self) -> list[str]:
        """Follower: the leader's incidents this node has no copy of (or an older one)."""
        if self.leading:
            return []
        return [i for i, v in self.leader_incidents.items() if self.mirrored.get(i) != v]

    def copy(self, record: Record, now_wall: float) -> None:
        """Follower: keep the leader's record of an incident in this node's incidents database."""
        try:
            shared(self.state_dir).save(record, now_wall)
        except IncidentStoreError as exc:
            log.error("cannot keep a copy of incident %s: %s", record.id, exc)
            return
        self.mirrored[record.id] = version(record)

    def describe(self) -> dict[str, Any]:
        """For the status API and the dashboard."""
        return {
            "role": "leader" if self.leading else ("follower" if self.connected else "alone"),
            "leader": self.leader,
            "decided_by": self.source,
            "cluster_mode": self.loop.state.mode.value,
        }
