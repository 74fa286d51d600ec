"""Cluster-wide limits against a real redis-server (the `redis_server` fixture): the Lua script's shared
buckets and their expiry, three workers' background tasks sharing one limit in real time, a worker that
loses Redis and finds it again, and one whose Redis stops answering."""

from __future__ import annotations

import asyncio
import logging
import socket
import time

import pytest

from helpers.redis_server import RedisServer
from shieldwall.cluster.connection import async_client
from shieldwall.cluster.keys import Keys
from shieldwall.cluster.limits import SharedBuckets
from shieldwall.config.load import parse_config
from shieldwall.config.schema import Settings
from shieldwall.core.clock import SystemClock
from shieldwall.dataplane.cluster_limits import ClusterLimits
from shieldwall.policy.compile import compile_policy
from shieldwall.policy.decision import Action, RequestView
from shieldwall.policy.engine import Policy

KEYS = Keys("test")
VIEW = RequestView("192.0.2.1", "192.0.2.0/24", b"GET", b"example.org", b"/search", b"", ())
RULE = {
    "name": "search",
    "action": "limit",
    "match": {"path_prefix": "/search"},
    "limit": {"rate": 40.0, "burst": 10, "per": "route", "scope": "cluster"},
}


def cluster_settings(url: str, **cluster: object) -> Settings:
    return parse_config({"cluster": {"redis": url, "namespace": "test", **cluster}, "rules": [RULE]})


def test_the_script_advances_shared_buckets_and_lets_them_expire(redis_server: RedisServer) -> None:
    async def body() -> None:
        client = async_client(redis_server.url, 1.0)
        try:
            buckets = SharedBuckets(client, KEYS)
            owed = await buckets.advance(0.0, [("r", "a", 3, 0.1), ("r", "b", 0, 0.1), ("s", "a", 1, 0.5)])
            assert owed == [pytest.approx(0.3, abs=0.01), 0.0, pytest.approx(0.5, abs=0.01)]
            assert await client.exists(KEYS.limit("r", "b")) == 0, "a bucket that owes nothing is not stored"
            assert 250 < await client.pttl(KEYS.limit("r", "a")) <= 300, "it expires when it owes nothing"
            (owed_a,) = await buckets.advance(0.0, [("r", "a", 2, 0.1)])
            assert owed_a == pytest.approx(0.5, abs=0.01)
            # Requests that came over the last second are set against the time the bucket was idle.
            (owed_c,) = await buckets.advance(1.0, [("r", "c", 5, 0.1)])
            assert owed_c == 0.0
            await asyncio.sleep(0.6)
            assert await client.exists(KEYS.limit("r", "a")) == 0
            assert await buckets.advance(0.0, [("r", "a", 0, 0.1)]) == [0.0]
            assert await buckets.advance(0.0, []) == []
        finally:
            await client.aclose()

    asyncio.run(body())


async def flood(policies: list[Policy], per_second: float, seconds: float) -> list[int]:
    """`per_second` requests at each policy (worker) for `seconds`, in real time; admitted per worker."""
    admitted = [0] * len(policies)
    started = time.monotonic()
    tick = 0
    while (now := time.monotonic()) < started + seconds:
        for index, policy in enumerate(policies):
            admitted[index] += policy.decide(VIEW, now).action is Action.ALLOW
        tick += 1
        await asyncio.sleep(max(0.0, started + tick / per_second - time.monotonic()))
    return admitted


def test_three_workers_share_one_limit_through_redis(redis_server: RedisServer) -> None:
    """150 requests/s at each of three workers for 3 s, each syncing every 0.2 s in the background:
    together they admit about what one bucket would (40/s, burst 10), within docs/policy.md's bound."""
    settings = cluster_settings(redis_server.url)
    policies = [compile_policy(settings.rules) for _ in range(3)]

    async def body() -> list[int]:
        loop = asyncio.get_running_loop()
        workers = [
            ClusterLimits(settings.cluster, p.cluster_tallies(), SystemClock(), i)
            for i, p in enumerate(policies)
        ]
        for worker in workers:
            worker.start(loop)
        try:
            return await flood(policies, 150.0, 3.0)
        finally:
            for worker in workers:
                assert worker.errors == 0 and worker.synced >= 10
                await worker.close()

    admitted = asyncio.run(body())
    total = sum(admitted)
    assert 40 * 3 * 0.9 <= total <= 40 * 3 + 3 * (10 + 40 * 0.2), admitted
    assert min(admitted) >= 0.5 * total / 3, admitted


def test_a_worker_that_loses_redis_limits_alone_says_so_once_and_resyncs(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings = cluster_settings(redis_server.url, timeout=0.5)
    policy = compile_policy(settings.rules)

    async def body() -> None:
        worker = ClusterLimits(settings.cluster, policy.cluster_tallies(), SystemClock(), 0)
        try:
            outcomes = []
            for step in range(10):
                policy.decide(VIEW, time.monotonic())  # something to sync
                if step == 2:
                    redis_server.stop()
                if step == 6:
                    redis_server.start()
                outcomes.append(await worker.sync())
                assert worker.stats()["cluster.limits.lost"] == (0 if outcomes[-1] else 1)
            assert outcomes == [True, True, False, False, False, False, True, True, True, True]
            assert worker.stats()["cluster.limits.errors"] == 4
            assert worker.stats()["cluster.limits.synced"] == 6
        finally:
            await worker.close()

    with caplog.at_level(logging.WARNING, logger="shieldwall.cluster"):
        asyncio.run(body())
    messages = [record.getMessage() for record in caplog.records if record.name == "shieldwall.cluster"]
    assert len(messages) == 2, messages
    assert "Redis unreachable" in messages[0] and "answers again" in messages[1]


def test_a_redis_that_does_not_answer_costs_a_sync_at_most_the_timeout() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts (the kernel does), never answers
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        settings = cluster_settings(url, timeout=0.3)
        policy = compile_policy(settings.rules)

        async def body() -> float:
            worker = ClusterLimits(settings.cluster, policy.cluster_tallies(), SystemClock(), 0)
            try:
                policy.decide(VIEW, time.monotonic())
                started = time.monotonic()
                assert not await worker.sync()
                assert worker.lost
                return time.monotonic() - started
            finally:
                await worker.close()

        assert 0.25 < asyncio.run(body()) < 0.6
