"""The names of every Redis key and channel a shield uses, in one place.

All carry the hash tag `{namespace}`, so in a Redis Cluster they live in one slot: the Lua scripts may
touch several keys at once, at the price of one shard holding all of a shield's state (docs/scaling.md).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Keys:
    namespace: str

    def _key(self, name: str) -> str:
        return f"{{{self.namespace}}}:{name}"

    @property
    def bans(self) -> str:
        """HASH target -> the ban's JSON (the strongest one known for the target)."""
        return self._key("bans")

    @property
    def ban_ends(self) -> str:
        """ZSET target -> when its ban ends (epoch seconds; +inf for a permanent one): for pruning."""
        return self._key("bans:ends")

    @property
    def lifts(self) -> str:
        """HASH target -> the lift's JSON: an operator's unban, cluster-wide."""
        return self._key("lifts")

    @property
    def lift_ends(self) -> str:
        """ZSET target -> when its lift ends (+inf while it covers a permanent ban): for pruning."""
        return self._key("lifts:ends")

    @property
    def ban_events(self) -> str:
        """Pub/sub channel: each message one node's new bans and lifts (JSON)."""
        return self._key("bans:events")

    @property
    def secret(self) -> str:
        """STRING: the challenge secret file's JSON, so a cookie earned on one node is valid on all."""
        return self._key("challenge-secret")

    @property
    def seconds(self) -> str:
        """STREAM of every worker's per-second summary, from every node (field `node`, field `data`)."""
        return self._key("seconds")

    @property
    def leader(self) -> str:
        """STRING with an expiry: the node that writes incidents and mines signatures for the cluster."""
        return self._key("leader")

    @property
    def state(self) -> str:
        """STRING: the leader's control state (mode, signatures, incident) as JSON."""
        return self._key("state")

    def incident(self, incident_id: str) -> str:
        """STRING with an expiry: an incident's stored record (JSON), written by the leader."""
        return self._key(f"incident:{incident_id}")

    @property
    def pin(self) -> str:
        """STRING: the last operator's pin made on any node (control/state.py Pin as JSON)."""
        return self._key("pin")

    @property
    def signature_decisions(self) -> str:
        """HASH signature id -> an operator's last decision on it (pin, unpin, reject) as JSON."""
        return self._key("signature-decisions")

    @property
    def nodes(self) -> str:
        """ZSET node name -> its last heartbeat (wall-clock seconds)."""
        return self._key("nodes")

    def limit(self, rule: str, key: str) -> str:
        """STRING with an expiry: the TAT (µs, Redis clock) of one rule's bucket shared by the cluster."""
        return self._key(f"limit:{rule}:{key}")
