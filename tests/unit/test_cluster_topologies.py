"""The Redis deployments `[cluster] redis` accepts besides one server, each real and on loopback: Redis
Sentinel (redis+sentinel://) and a three-shard Redis Cluster (redis+cluster://). The bans' Lua script
and pub/sub, the lease and the stream of summaries work through each, as does the shared secret."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis

from helpers.redis_server import RedisServer
from shieldwall.challenge import keys as secret_keys
from shieldwall.cluster.bans import BanBatch, ClusterBans
from shieldwall.cluster.connection import aclose, async_client
from shieldwall.cluster.keys import Keys
from shieldwall.cluster.secret import share_secret
from shieldwall.cluster.shared_view import SharedView
from shieldwall.config.cluster_schema import Cluster
from shieldwall.detector.counters import SecondCounters
from shieldwall.drill.processes import Child, free_port
from shieldwall.limiter.bans import Ban

KEYS = Keys("topo")


def exercise(url: str) -> None:
    """Bans (script, pub/sub, snapshot), the lease and the stream, through a client for `url`."""
    now = time.time()

    async def scenario() -> None:
        client = async_client(url, 2.0)
        await client.ping()  # as the agent does first: a Redis Cluster client learns its slots
        bans = ClusterBans(client, KEYS)
        pubsub = client.pubsub()
        await pubsub.subscribe(KEYS.ban_events)
        await bans.publish(BanBatch("a", [Ban("192.0.2.1", now + 600, "t", "auto", 0, now)]))
        held = await bans.snapshot(now)
        assert [ban.target for ban in held.bans] == ["192.0.2.1"]
        heard = None
        for _ in range(30):
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message is not None:
                heard = BanBatch.from_message(message["data"])
                break
        assert heard is not None and heard.node == "a"
        view = SharedView(client, KEYS, "a")
        assert await view.claim() == "a"
        await view.read_seconds(0.0)
        await view.add_seconds([SecondCounters(0, 1.0).snapshot_and_reset(2.0).to_bytes()], 0.0)
        summaries, problems = await view.read_seconds(0.0)
        assert len(summaries) == 1 and not problems
        await pubsub.aclose()
        await aclose(client)

    asyncio.run(scenario())


@pytest.fixture
def sentinel(redis_server: RedisServer, tmp_path: Path) -> Iterator[str]:
    port = free_port()
    conf = tmp_path / "sentinel.conf"
    conf.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {tmp_path}\n"
        f"sentinel monitor mymaster 127.0.0.1 {redis_server.port} 1\n"
    )
    argv = [redis_server.binary, str(conf), "--sentinel"]
    child = Child.spawn("sentinel", argv, tmp_path / "sentinel.log", port=port)
    probe = redis.Redis(host="127.0.0.1", port=port, socket_timeout=1.0)

    def knows_the_master() -> bool:
        try:
            return probe.execute_command("SENTINEL", "get-master-addr-by-name", "mymaster") is not None
        except redis.RedisError:
            return False

    try:
        child.wait_until(knows_the_master, 10.0, "the sentinel monitoring the master")
    finally:
        probe.close()  # the test counts the sentinel's clients: none of the fixture's stays
    try:
        yield f"redis+sentinel://127.0.0.1:{port}/mymaster/0"
    finally:
        child.stop()


def test_through_redis_sentinel(sentinel: str, tmp_path: Path) -> None:
    exercise(sentinel)
    path = tmp_path / "secret.json"
    secret_keys.load_or_create(path)
    assert "is now the cluster's" in share_secret(Cluster(redis=sentinel, namespace="topo"), path)
    port = urlsplit(sentinel).port
    with redis.Redis(host="127.0.0.1", port=port, socket_timeout=1.0) as probe:
        clients = probe.execute_command("CLIENT", "LIST").decode().strip().splitlines()
    assert len(clients) == 1, f"the supervisor's client left connections to the sentinel: {clients}"


@pytest.fixture
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    shards = []
    try:
        for index in range(3):
            workdir = tmp_path_factory.mktemp(f"shard{index}")
            bus = str(free_port())  # by default port + 10000, which may be past 65535 or taken
            shard = RedisServer(
                workdir,
                ("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port", bus),
            )
            shard.start()
            shards.append(shard)
        addresses = [f"127.0.0.1:{shard.port}" for shard in shards]
        subprocess.run(
            ["redis-cli", "--cluster", "create", *addresses, "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=30,
        )
        probe = shards[0].client()
        deadline = time.monotonic() + 15
        while b"cluster_state:ok" not in probe.execute_command("CLUSTER", "INFO"):
            assert time.monotonic() < deadline, "the Redis Cluster never became ready"
            time.sleep(0.1)
        probe.close()
        yield f"redis+cluster://{addresses[0]}"
    finally:
        for shard in shards:
            shard.stop()


def test_through_a_redis_cluster(redis_cluster: str, tmp_path: Path) -> None:
    exercise(redis_cluster)
    path = tmp_path / "secret.json"
    secret_keys.load_or_create(path)
    assert "is now the cluster's" in share_secret(Cluster(redis=redis_cluster, namespace="topo"), path)
