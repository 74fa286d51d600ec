"""The cluster's bans in Redis: what every node's control process publishes, reads back and prunes.

Redis holds, per target, the strongest ban any node made (a HASH of the ban store's JSON entries, and a
ZSET of their ends for pruning) and the operators' lifts (the same pair). One Lua script per batch keeps
"the strongest wins" and "a lift removes the bans that began before it" atomic, and publishes the batch
on a channel, so every node hears of it at once; a node that was away reads the whole set back
(`snapshot`) when it reconnects. The JSON is the ban store's (state/ban_store.py `ban_entry`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, TypeVar

import redis.asyncio as aioredis

from shieldwall.cluster.keys import Keys
from shieldwall.limiter.bans import Ban, Lift
from shieldwall.state.ban_store import ban_entry, lift_entry, parse_ban, parse_lift

_T = TypeVar("_T")
FOREVER: Final = 1e18  # the ZSET score of a permanent ban or lift (Lua has no infinity from a string)

# KEYS: bans, ban ends, lifts, lift ends. ARGV: the channel, the message to publish, the number of bans,
# then (target, end, entry) per ban, then (target, at, end, entry) per lift.
_PUBLISH: Final = """
local n = tonumber(ARGV[3])
local i = 4
for _ = 1, n do
  local target, ends, entry = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  local old = redis.call('ZSCORE', KEYS[2], target)
  if (not old) or tonumber(old) < ends then
    redis.call('HSET', KEYS[1], target, entry)
    redis.call('ZADD', KEYS[2], ends, target)
  end
  i = i + 3
end
while i <= #ARGV do
  local target, at, ends, entry = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2]), ARGV[i + 3]
  local old = redis.call('HGET', KEYS[1], target)
  if old and tonumber(cjson.decode(old)['since']) <= at then
    redis.call('HDEL', KEYS[1], target)
    redis.call('ZREM', KEYS[2], target)
  end
  redis.call('HSET', KEYS[3], target, entry)
  redis.call('ZADD', KEYS[4], ends, target)
  i = i + 4
end
return redis.call('PUBLISH', ARGV[1], ARGV[2])
"""

# KEYS: bans, ban ends, lifts, lift ends. ARGV: now. Returns how many entries went.
_PRUNE: Final = """
local gone = 0
for pair = 0, 1 do
  local hash, ends = KEYS[1 + pair * 2], KEYS[2 + pair * 2]
  local old = redis.call('ZRANGEBYSCORE', ends, '-inf', ARGV[1])
  for _, target in ipairs(old) do
    redis.call('HDEL', hash, target)
    gone = gone + 1
  end
  redis.call('ZREMRANGEBYSCORE', ends, '-inf', ARGV[1])
end
return gone
"""


@dataclass(slots=True)
class BanBatch:
    """Bans and lifts as one node sent them (or as a snapshot holds them)."""

    node: str = ""
    bans: list[Ban] = field(default_factory=list)
    lifts: list[Lift] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def to_message(self) -> str:
        return json.dumps(
            {
                "node": self.node,
                "bans": [ban_entry(ban) for ban in self.bans],
                "lifts": [lift_entry(lift) for lift in self.lifts],
            },
            separators=(",", ":"),
        )

    @staticmethod
    def from_message(data: str | bytes) -> BanBatch:
        """A published batch; entries that do not parse are named in `problems` and skipped."""
        batch = BanBatch()
        try:
            document = json.loads(data)
            if not isinstance(document, dict):
                raise ValueError("not a JSON object")
            batch.node = str(document.get("node", ""))
            _parse_into(batch, document.get("bans", []), document.get("lifts", []))
        except ValueError as exc:
            batch.problems.append(f"a damaged ban message: {exc}")
        return batch


def _parse_into(batch: BanBatch, bans: Any, lifts: Any) -> None:
    batch.bans += _entries(bans, parse_ban, batch.problems)
    batch.lifts += _entries(lifts, parse_lift, batch.problems)


def _entries(entries: Any, parse: Callable[[Any], _T], problems: list[str]) -> list[_T]:
    """The entries that parse (JSON objects, or their text as Redis returns them); the others are named
    in `problems`."""
    parsed = []
    for entry in entries if isinstance(entries, list) else ():
        try:
            parsed.append(parse(json.loads(entry) if isinstance(entry, str | bytes) else entry))
        except ValueError as exc:
            problems.append(f"skipped an entry: {exc}")
    return parsed


class ClusterBans:
    """The Redis operations on the cluster's bans, for one node."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._publish = client.register_script(_PUBLISH)
        self._prune = client.register_script(_PRUNE)
        self._hash_keys = [keys.bans, keys.ban_ends, keys.lifts, keys.lift_ends]

    async def publish(self, batch: BanBatch) -> None:
        """Store the batch (the strongest ban per target wins; lifts remove older bans) and announce it."""
        args: list[str | float] = [self.keys.ban_events, batch.to_message(), len(batch.bans)]
        for ban in batch.bans:
            args += [ban.target, _end(ban.until), json.dumps(ban_entry(ban))]
        for lift in batch.lifts:
            args += [lift.target, lift.at, _end(lift.until), json.dumps(lift_entry(lift))]
        await self._publish(keys=self._hash_keys, args=args)

    async def snapshot(self, now: float) -> BanBatch:
        """Every active ban and lift the cluster holds: what a node reads when it (re)connects."""
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hvals(self.keys.bans)
            pipe.hvals(self.keys.lifts)
            bans, lifts = await pipe.execute()
        batch = BanBatch()
        _parse_into(batch, bans, lifts)
        batch.bans = [ban for ban in batch.bans if ban.end > now]
        batch.lifts = [lift for lift in batch.lifts if lift.until is None or lift.until > now]
        return batch

    async def prune(self, now: float) -> int:
        """Drop what has ended; any node may do it, as often as it likes."""
        return int(await self._prune(keys=self._hash_keys, args=[now]))


def _end(until: float | None) -> float:
    return FOREVER if until is None else until
