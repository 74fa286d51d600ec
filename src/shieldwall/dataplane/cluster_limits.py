"""A worker's background task for the `scope = "cluster"` limits: every `[cluster] sync_interval`, send what
its buckets admitted to the shared buckets in Redis and raise its own to what those owe (the arithmetic:
limiter/cluster_tally.py; the script: cluster/limits.py; the whole: docs/policy.md#cluster-wide-limits).

Requests never wait for it: they are judged by the worker's own buckets, which this task corrects between
requests. Each sync is bounded by `[cluster] timeout`. When Redis does not answer, the worker goes on
limiting with its own buckets alone, says so once in the log (and once more when Redis is back), counts
the failed syncs and shows `cluster.limits.lost` in its stats, and keeps trying at every interval.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from redis.exceptions import RedisError

from shieldwall.cluster.connection import aclose, async_client
from shieldwall.cluster.keys import Keys
from shieldwall.cluster.limits import SharedBuckets
from shieldwall.config.cluster_schema import Cluster
from shieldwall.core.clock import Clock
from shieldwall.limiter.cluster_tally import ClusterTally, Reconciler

log = logging.getLogger("shieldwall.cluster")

BUG_PAUSE = 10.0  # seconds before syncing again after an unexpected error (at most one log line each)


class ClusterLimits:
    """The reconciliation of one worker's cluster-scoped limits with Redis."""

    def __init__(
        self, cluster: Cluster, tallies: Mapping[str, ClusterTally], clock: Clock, worker_id: int
    ) -> None:
        if cluster.redis is None:
            raise ValueError("cluster-scoped limits need [cluster] redis")  # the config refuses it first
        self.cluster = cluster
        self.reconciler = Reconciler(tallies, clock.monotonic())
        self.clock = clock
        self.worker_id = worker_id
        self.synced = 0  # syncs Redis answered
        self.errors = 0  # syncs it did not (refused, timed out, failed)
        self.lost = False  # the last sync failed: limiting on this worker's buckets alone
        self._client = async_client(cluster.redis, cluster.timeout)
        self._buckets = SharedBuckets(self._client, Keys(cluster.namespace))
        self._task: asyncio.Task[None] | None = None

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._task = loop.create_task(self._run(), name="cluster-limits")

    async def close(self) -> None:
        """Stop syncing (the worker is stopping) and close the connections."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait((self._task,))
        await aclose(self._client)

    def stats(self) -> dict[str, int]:
        """For the worker's per-second telemetry (summed over workers by the control process)."""
        return {
            "cluster.limits.synced": self.synced,
            "cluster.limits.errors": self.errors,
            "cluster.limits.lost": int(self.lost),
            "cluster.limits.deferred": self.reconciler.deferred,
            "cluster.limits.untallied": self.reconciler.untallied,
        }

    async def sync(self) -> bool:
        """One reconciliation; False when Redis did not answer within `[cluster] timeout`."""
        plan = self.reconciler.plan(self.clock.monotonic())
        if not plan.items:
            return True
        counts = [(item.rule, item.key, item.count, item.interval) for item in plan.items]
        try:
            async with asyncio.timeout(self.cluster.timeout):
                owed = await self._buckets.advance(plan.age, counts)
        except (RedisError, OSError, TimeoutError) as exc:
            self.errors += 1
            if not self.lost:
                self.lost = True
                log.warning(
                    "worker %d: Redis unreachable for the cluster limits (%s): limiting on this worker's "
                    "buckets alone until it answers again",
                    self.worker_id,
                    str(exc) or type(exc).__name__,
                )
            return False
        self.reconciler.settle(plan, owed, self.clock.monotonic())
        self.synced += 1
        if self.lost:
            self.lost = False
            log.warning("worker %d: Redis answers again: the cluster limits are shared again", self.worker_id)
        return True

    async def _run(self) -> None:
        interval = self.cluster.sync_interval
        while True:
            started = self.clock.monotonic()
            try:
                await self.sync()
            except Exception:  # a bug, not Redis: say so, go on with the worker's own buckets, try again
                log.exception("worker %d: a sync of the cluster limits failed", self.worker_id)
                started += BUG_PAUSE
            await asyncio.sleep(max(0.0, started + interval - self.clock.monotonic()))
