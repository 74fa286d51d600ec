"""The cluster's Redis operations against a real redis-server: bans (the strongest wins, a lift removes
older bans, ended ones are pruned, a batch is announced on the channel), the leader's lease, the stream
of summaries, and the challenge secret shared between nodes."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from helpers.redis_server import RedisServer
from shieldwall.admin.operator import Operator
from shieldwall.challenge import keys as secret_keys
from shieldwall.cluster.bans import BanBatch, ClusterBans
from shieldwall.cluster.connection import aclose, async_client
from shieldwall.cluster.keys import Keys
from shieldwall.cluster.secret import share_secret
from shieldwall.cluster.shared_view import LEASE_MS, NODE_GONE, SharedView
from shieldwall.config import parse_config
from shieldwall.config.cluster_schema import Cluster
from shieldwall.control.cluster_agent import ClusterAgent
from shieldwall.control.cluster_view import ClusterView
from shieldwall.control.loop import ControlLoop
from shieldwall.control.state import StateReader
from shieldwall.detector.config import DetectorConfig
from shieldwall.detector.counters import SecondCounters
from shieldwall.detector.signatures import Signature
from shieldwall.limiter.bans import Ban, Lift

KEYS = Keys("test")


def ban(target: str, until: float | None, since: float = 1000.0, source: str = "auto") -> Ban:
    return Ban(target, until, "test", "manual" if source == "manual" else "auto", 0, since)


def test_the_strongest_ban_wins_a_lift_removes_older_bans_and_pruning_drops_ended_ones(
    redis_server: RedisServer,
) -> None:
    now = time.time()

    async def scenario() -> None:
        client = async_client(redis_server.url, 1.0)
        bans = ClusterBans(client, KEYS)
        pubsub = client.pubsub()
        await pubsub.subscribe(KEYS.ban_events)
        await bans.publish(BanBatch("a", [ban("192.0.2.1", now + 600), ban("192.0.2.2", now + 5)]))
        await bans.publish(BanBatch("b", [ban("192.0.2.1", now + 60)]))  # weaker: the stronger stays
        await bans.publish(BanBatch("b", [ban("192.0.2.9", None, source="manual")]))
        held = await bans.snapshot(now)
        assert {b.target: b.until for b in held.bans} == {
            "192.0.2.1": now + 600,
            "192.0.2.2": now + 5,
            "192.0.2.9": None,
        }
        await bans.publish(BanBatch("c", lifts=[Lift("192.0.2.1", now, now + 600)]))
        held = await bans.snapshot(now)
        assert "192.0.2.1" not in {b.target for b in held.bans}
        assert [lift.target for lift in held.lifts] == ["192.0.2.1"]
        assert await bans.prune(now + 10) == 1  # 192.0.2.2 ended
        assert {b.target for b in (await bans.snapshot(now + 10)).bans} == {"192.0.2.9"}
        heard = []
        for _ in range(20):  # a None is also what the subscription's confirmation reads as
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
            if message is not None:
                heard.append(BanBatch.from_message(message["data"]))
        assert [batch.node for batch in heard] == ["a", "b", "b", "c"]
        assert heard[0].bans[0] == ban("192.0.2.1", now + 600)
        await pubsub.aclose()
        await aclose(client)

    asyncio.run(scenario())


def test_a_damaged_ban_message_is_reported_not_raised() -> None:
    batch = BanBatch.from_message(b'{"node": "a", "bans": [{"target": "nope"}], "lifts": "x"}')
    assert batch.node == "a" and not batch.bans and batch.problems
    assert BanBatch.from_message(b"[1").problems


def test_one_leader_at_a_time_and_a_successor_after_the_lease(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        client = async_client(redis_server.url, 1.0)
        a, b = SharedView(client, KEYS, "a"), SharedView(client, KEYS, "b")
        assert await a.claim() == "a"
        assert await b.claim() == "a"
        assert await a.claim() == "a"  # renewed
        await asyncio.sleep(LEASE_MS / 1000 + 0.2)  # a stops renewing
        assert await b.claim() == "b"
        await aclose(client)

    asyncio.run(scenario())


def test_heartbeats_say_which_nodes_are_alive(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        client = async_client(redis_server.url, 1.0)
        a, b = SharedView(client, KEYS, "a"), SharedView(client, KEYS, "b")
        assert await a.beat(1000.0) == ["a"]
        assert await b.beat(1001.0) == ["a", "b"]
        assert await b.beat(1001.0 + NODE_GONE + 0.5) == ["b"], "a stopped beating"
        await aclose(client)

    asyncio.run(scenario())


def test_summaries_cross_the_stream_onto_the_readers_clock(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        client = async_client(redis_server.url, 1.0)
        sender, reader = SharedView(client, KEYS, "a"), SharedView(client, KEYS, "b")
        assert await reader.read_seconds(own_offset=0.0) == ([], [])  # learns where the stream ends
        counters = SecondCounters(3, 100.0)
        payload = counters.snapshot_and_reset(101.0, {}).to_bytes()
        await sender.add_seconds([payload, b"not json"], offset=5000.0)
        summaries, problems = await reader.read_seconds(own_offset=4000.0)
        assert len(summaries) == 1 and len(problems) == 1
        (second,) = summaries
        assert (second.started, second.ended) == (1100.0, 1101.0)  # the clocks are 1000 s apart
        assert await reader.read_seconds(own_offset=4000.0) == ([], [])
        await aclose(client)

    asyncio.run(scenario())


def test_nodes_converge_on_one_challenge_secret_and_a_rotation_spreads(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    cluster = Cluster(redis=redis_server.url, node="a", namespace="test")
    first, second = tmp_path / "a" / "secret.json", tmp_path / "b" / "secret.json"
    secret_keys.load_or_create(first)
    secret_keys.load_or_create(second)
    assert first.read_bytes() != second.read_bytes()
    assert "is now the cluster's" in share_secret(cluster, first)
    assert "took the cluster's" in share_secret(cluster, second)
    assert secret_keys.load(first) == secret_keys.load(second)
    rotated = secret_keys.rotate(second, time.time())
    assert "generation 2 is now the cluster's" in share_secret(cluster, second)
    assert "took the cluster's (generation 2)" in share_secret(cluster, first)
    assert secret_keys.load(first) == rotated


def test_without_redis_a_node_keeps_its_own_secret(redis_server: RedisServer, tmp_path: Path) -> None:
    path = tmp_path / "secret.json"
    own = secret_keys.load_or_create(path)
    redis_server.stop()
    line = share_secret(Cluster(redis=redis_server.url, timeout=0.2), path)
    assert "cannot reach the cluster's Redis" in line
    assert secret_keys.load(path) == own


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:6379", "not a Redis URL"),
        ("redis+sentinel://127.0.0.1:26379", "service name"),
    ],
)
def test_bad_redis_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        async_client(url, 1.0) if url.startswith("redis") else Cluster(redis=url)


def test_the_stream_keeps_only_the_last_seconds_by_redis_clock(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        client = async_client(redis_server.url, 1.0)
        view = SharedView(client, KEYS, "a")
        payload = SecondCounters(0, 1.0).snapshot_and_reset(2.0).to_bytes()
        for _ in range(3):
            await view.add_seconds([payload] * 100, 0.0)
        assert await client.xlen(KEYS.seconds) == 300, "nothing is older than the window yet"
        view._added_ms += 60_000  # as if a minute had passed on Redis's clock since the last addition
        await view.add_seconds([payload], 0.0)
        assert await client.xlen(KEYS.seconds) <= 101, "whole stream nodes older than the window went"
        await aclose(client)

    asyncio.run(scenario())


def test_an_operators_signature_decision_on_one_node_reaches_the_clusters_detector_on_another(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    now = time.time()
    signature = Signature((("user_agent", "flood/1.0"),), 0.9, 0.0, "block", now, now + 120)

    def node(name: str) -> tuple[ClusterAgent, ControlLoop]:
        config = {"cluster": {"redis": redis_server.url, "node": name, "namespace": "test"}}
        settings = parse_config({**config, "server": {"state_dir": str(tmp_path / name)}})
        cluster = ControlLoop(DetectorConfig())
        cluster.signatures.propose([signature], now)  # both nodes' cluster detectors mined it
        return ClusterAgent(settings, ClusterView(cluster, name, tmp_path / name)), cluster

    (agent_a, cluster_a), (agent_b, cluster_b) = node("a"), node("b")
    local_a = ControlLoop(DetectorConfig())  # node a's own detector never saw the signature
    settings_a = parse_config({"server": {"state_dir": str(tmp_path / "a")}})
    operator = Operator(local_a, settings_a, StateReader(tmp_path / "pin.json"))
    operator.cluster, operator.share = cluster_a, agent_a.decide
    assert operator.reject_signature(signature.id, "alice"), "found in the cluster's detector"
    assert cluster_a.signatures.get(signature.id) is None
    assert not (tmp_path / "a" / "control" / "state.json").exists(), "the next tick applies it"

    async def exchange() -> None:
        client = async_client(redis_server.url, 1.0)
        await agent_a._exchange_decisions(SharedView(client, Keys("test"), "a"), time.time())
        assert cluster_b.signatures.get(signature.id) is not None
        await agent_b._exchange_decisions(SharedView(client, Keys("test"), "b"), time.time())
        await aclose(client)

    asyncio.run(exchange())
    assert cluster_b.signatures.get(signature.id) is None, "node b's cluster detector dropped it too"
    assert cluster_b.signatures.is_rejected(signature.id)
