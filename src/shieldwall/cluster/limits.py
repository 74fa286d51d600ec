"""The Redis side of the cluster-wide limits: one shared GCRA bucket per cluster-scoped bucket, advanced by
every worker of every node in one atomic script call per sync (limiter/cluster_tally.py says what to send
and what the answer means; dataplane/cluster_limits.py calls this in the background).

One Lua call per sync, not a pipeline: a script runs atomically, so what it answers is each bucket exactly
after this worker's requests went in, and a whole sync costs one round trip. Times are Redis's own
(`TIME`), so the nodes' clocks need not agree; what travels is durations. Every key carries the
namespace's hash tag (cluster/keys.py), so a Redis Cluster runs the script on one shard. Needs Redis 5 or
later (a script may write after reading `TIME`).

A key holds its bucket's TAT in microseconds and expires when that has passed: a bucket that owes nothing
is the same as no bucket at all, so Redis keeps only the buckets that are being limited, and a Redis that
restarts empty only forgets debts (each worker still holds its own).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import redis.asyncio as aioredis

from shieldwall.cluster.keys import Keys

# KEYS: the buckets. ARGV[1]: how long ago (µs) this worker's previous sync was: the requests it reports
# came since then, so they are counted from then. ARGV[2]: for each key in order, "COUNT INTERVAL " (the
# requests it admitted there, and that rule's µs per request): one string, not two arguments a key, which
# halves what packing and parsing a sync costs the worker (docs/policy.md has the figures). Answers, in one
# string, what each bucket owes now (µs).
ADVANCE_SCRIPT: Final = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local start = now - tonumber(ARGV[1])
local owed = {}
local i = 0
for count, interval in string.gmatch(ARGV[2], '(%d+) ([%d.]+)') do
  i = i + 1
  local key = KEYS[i]
  count = tonumber(count)
  local tat = tonumber(redis.call('GET', key) or '0')
  if count > 0 then
    tat = math.max(tat, start) + count * tonumber(interval)
    if tat > now then
      redis.call('SET', key, string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000))
    end
  end
  owed[i] = string.format('%.0f', math.max(0, tat - now))
end
return table.concat(owed, ' ')
"""


class SharedBuckets:
    """The shared buckets of one shield's cluster-scoped limits (namespace `keys`), through `client`."""

    def __init__(self, client: aioredis.Redis, keys: Keys) -> None:
        self.keys = keys
        # EVALSHA, loading the script again when Redis answers NOSCRIPT (after a restart).
        self._script = client.register_script(ADVANCE_SCRIPT)

    async def advance(self, age: float, counts: Sequence[tuple[str, str, int, float]]) -> list[float]:
        """Add each (rule, bucket key, count, interval in seconds) to its shared bucket, counted from
        `age` seconds ago, atomically; what each bucket owes afterwards (seconds), in the same order."""
        if not counts:
            return []
        names = [self.keys.limit(rule, key) for rule, key, _, _ in counts]
        packed = "".join([f"{count} {interval * 1e6:.3f} " for _, _, count, interval in counts])
        owed = await self._script(keys=names, args=[round(age * 1e6), packed])
        return [float(micros) / 1e6 for micros in owed.split()]
