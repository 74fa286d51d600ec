"""Three shield nodes and one real Redis on loopback, acting as one shield: a ban made on one node is
refused by the others within a second, an operator's unban reaches all of them, a clearance cookie
earned on one node is good on the others, and Redis lost mid-traffic costs no legitimate request."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_admin_api import Admin
from test_policy_and_bans import bans_cli, connect_from, is_refused_at_accept

from helpers import procs
from helpers.redis_server import RedisServer
from helpers.tomlfile import merge, write_toml
from shieldwall.challenge.endpoint import VERIFY_PATH
from shieldwall.challenge.solver import solve
from shieldwall.detector.events import Mode
from shieldwall.drill.client import Response
from shieldwall.drill.processes import accepts, free_port
from shieldwall.drill.solving import parse_challenge
from shieldwall.report import store
from shieldwall.state import incident_store

pytestmark = pytest.mark.integration

NODES = ("a", "b", "c")
PROPAGATION = 1.0  # seconds: the bound for a ban to reach the other nodes
BROWSER = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) shieldwall-cluster-test"}

Cluster = dict[str, procs.ServerProcess]


def node_config(name: str, redis: RedisServer, workdir: Path, extra: dict[str, Any]) -> dict[str, Any]:
    config = {
        "server": {"state_dir": str(workdir / f"state-{name}")},
        "cluster": {"redis": redis.url, "node": name, "timeout": 0.5},
    }
    return merge(config, extra)


def start_cluster(
    start_shield: Callable[..., procs.ServerProcess],
    redis: RedisServer,
    workdir: Path,
    extra: dict[str, Any],
    admin_port: int | None = None,
) -> Cluster:
    """Nodes a, b and c; node b serves the admin API on `admin_port` when one is given."""
    nodes = {}
    for name in NODES:
        config = node_config(name, redis, workdir, extra)
        if name == "b" and admin_port is not None:
            config["admin"] = {"enabled": True, "listen": f"127.0.0.1:{admin_port}"}
        nodes[name] = start_shield(config)
    return nodes


def cli_config(name: str, redis: RedisServer, workdir: Path, extra: dict[str, Any]) -> Path:
    path = workdir / f"cli-{name}.toml"
    write_toml(path, merge(procs.BASE_SHIELD_CONFIG, node_config(name, redis, workdir, extra)))
    return path


def until(predicate: Callable[[], bool], timeout: float) -> float | None:
    """Seconds until `predicate` held (polled every 50 ms), or None if it did not within `timeout`."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.05)
    return None


def first_refusal(
    source: str, shield: procs.ServerProcess, since: float, timeout: float = 5.0
) -> float | None:
    """Seconds from `since` to the start of the first probe that found `source` refused at accept: an
    upper bound of when the ban took effect there (the probe before it, 0.25 s earlier, was let in)."""
    while time.monotonic() < since + timeout:
        started = time.monotonic()
        if refused_quickly(source, shield):
            return started - since
        time.sleep(0.05)
    return None


def refused_quickly(source: str, shield: procs.ServerProcess) -> bool:
    """Whether `source` is refused at accept: the connection closes at once, before any answer (a
    client let in gets no answer either, its request not being sent: the look costs 0.2 s)."""
    with connect_from(source, shield) as conn:
        return conn.peer_closed(within=0.2)


def answered(source: str, shield: procs.ServerProcess) -> bool:
    with connect_from(source, shield) as conn:
        try:
            return conn.request("GET", "/hello").status == 200
        except OSError:
            return False


BAN_FAST = {
    "rules": [{"name": "no-wp", "action": "block", "match": {"path_prefix": "/wp-"}}],
    "bans": {"offences": 3, "offence_window": 60.0, "durations": [300.0]},
}


def test_a_ban_on_one_node_is_refused_by_the_others_within_a_second(
    start_shield, redis_server: RedisServer, tmp_path: Path
) -> None:
    nodes = start_cluster(start_shield, redis_server, tmp_path, BAN_FAST)
    for shield in nodes.values():
        assert answered("127.0.0.51", shield)
    with connect_from("127.0.0.51", nodes["a"]) as conn:
        assert [conn.request("GET", "/wp-admin").status for _ in range(3)] == [403, 403, 403]
        banned_at = time.monotonic()
        assert conn.peer_closed(within=3)
    for name in ("b", "c"):
        took = first_refusal("127.0.0.51", nodes[name], since=banned_at)
        print(f"ban on a refused by {name} within {took} s")
        assert took is not None and took <= PROPAGATION, (name, took)
    assert is_refused_at_accept("127.0.0.51", nodes["a"])
    with connect_from("127.0.0.52", nodes["b"]) as conn:  # and from another node
        assert [conn.request("GET", "/wp-admin").status for _ in range(3)] == [403, 403, 403]
        banned_at = time.monotonic()
    took = first_refusal("127.0.0.52", nodes["c"], since=banned_at)
    print(f"ban on b refused by c within {took} s")
    assert took is not None and took <= PROPAGATION, took


def test_an_operators_ban_and_unban_on_one_node_reach_every_node(
    start_shield, redis_server: RedisServer, tmp_path: Path
) -> None:
    nodes = start_cluster(start_shield, redis_server, tmp_path, {})
    on_b = cli_config("b", redis_server, tmp_path, {})
    added = bans_cli("add", "127.0.0.60", "--for", "10m", "--reason", "cluster test", config=on_b)
    written_at = time.monotonic()
    assert added.returncode == 0, added.stderr
    for name in NODES:
        took = first_refusal("127.0.0.60", nodes[name], since=written_at)
        print(f"operator's ban on b refused by {name} within {took} s")
        assert took is not None and took <= PROPAGATION, (name, took)
    on_c = cli_config("c", redis_server, tmp_path, {})
    listed = bans_cli("list", config=on_c)
    assert "127.0.0.60" in listed.stdout, "node c lists the ban node b's operator made"
    removed = bans_cli("remove", "127.0.0.60", config=on_c)
    assert removed.returncode == 0, removed.stderr
    for name in NODES:
        took = until(lambda name=name: answered("127.0.0.60", nodes[name]), 5.0)
        assert took is not None, f"node {name} still refuses the client after the unban on node c"


def challenged(shield: procs.ServerProcess, client: httpx.Client) -> httpx.Response:
    return client.get(f"{shield.url}/hello", headers=BROWSER)


def test_a_clearance_cookie_earned_on_one_node_is_good_on_the_others(
    start_shield, redis_server: RedisServer, tmp_path: Path
) -> None:
    extra = {"rules": [{"name": "everyone", "action": "challenge", "match": {"path_prefix": "/"}}]}
    nodes = start_cluster(start_shield, redis_server, tmp_path, extra)
    with httpx.Client(timeout=10) as client:
        page = challenged(nodes["a"], client)
        headers = tuple((name.lower(), value) for name, value in page.headers.raw)
        parsed = parse_challenge(Response("GET", "/hello", page.status_code, headers, page.content, 0.0))
        assert parsed is not None, page.text[:300]
        nonce = solve(parsed.challenge, parsed.difficulty)
        verified = client.get(
            f"{nodes['a'].url}{VERIFY_PATH}",
            params={"c": parsed.challenge, "n": str(nonce)},
            headers=BROWSER,
        )
        assert verified.status_code == 303, verified.text[:300]
        cookies = verified.headers.get_list("set-cookie")
        assert cookies, "no clearance cookie"
        jar = "; ".join(cookie.split(";", 1)[0] for cookie in cookies)
        client.cookies.clear()
        for name in NODES:
            passed = client.get(f"{nodes[name].url}/hello", headers={**BROWSER, "Cookie": jar})
            assert passed.status_code == 200, (name, passed.status_code, passed.text[:200])
    with httpx.Client(timeout=10) as stranger:
        assert challenged(nodes["b"], stranger).status_code == 403, "without the cookie, node b challenges"
    secrets = {(tmp_path / f"state-{name}" / "challenge" / "secret.json").read_bytes() for name in NODES}
    assert len(secrets) == 1, "every node holds the cluster's one secret"


DETECTOR = {"attack_rps": 40.0, "min_rps": 40.0, "hold": 2.0, "warmup": 0}
PER_NODE_RPS = 25.0  # below min_rps on every node: only the cluster as a whole is flooded


def paced_flood(shield: procs.ServerProcess, source: str, stop: threading.Event, seconds: float) -> None:
    """PER_NODE_RPS keep-alive GETs a second from one loopback source, until `stop` or `seconds`."""
    deadline = time.monotonic() + seconds
    with contextlib.suppress(OSError, ConnectionError), connect_from(source, shield) as conn:
        for sent in range(int(seconds * PER_NODE_RPS) + 1):
            if stop.is_set() or time.monotonic() > deadline:
                return
            conn.request("GET", "/hello", headers=[("User-Agent", "flood/1.0")])
            time.sleep(max(0.0, sent / PER_NODE_RPS - (time.monotonic() - deadline + seconds)))


def mode_of(workdir: Path, name: str) -> str:
    try:
        return str(json.loads((workdir / f"state-{name}" / "control" / "state.json").read_text())["mode"])
    except (OSError, ValueError, KeyError):
        return "normal"


def test_the_cluster_sees_a_flood_no_node_sees_alone_and_keeps_one_incident(
    start_shield, redis_server: RedisServer, tmp_path: Path
) -> None:
    port = free_port()
    nodes = start_cluster(start_shield, redis_server, tmp_path, {"detector": DETECTOR}, admin_port=port)
    nodes["b"].wait_until(lambda: accepts("127.0.0.1", port), 20, "node b's admin listener")
    admin = Admin(port, (tmp_path / "state-b" / "admin" / "token").read_text().strip())
    stop = threading.Event()
    floods = [
        threading.Thread(target=paced_flood, args=(nodes[name], f"127.0.70.{i}", stop, 25.0))
        for i, name in enumerate(NODES, 1)
    ]
    for thread in floods:
        thread.start()
    try:
        took = until(lambda: all(mode_of(tmp_path, name) == "under_attack" for name in NODES), 15.0)
        assert took is not None, {name: mode_of(tmp_path, name) for name in NODES}
        # Node b's operator sees the mode it applies, the cluster's, beside its own traffic's figures.
        shown = until(lambda: admin.json("GET", "/api/v1/status")["mode"] == "under_attack", 5.0)
        status = admin.json("GET", "/api/v1/status")
        assert shown is not None and status["cluster"]["nodes"] == ["a", "b", "c"], status.get("cluster")
        assert status["now"]["rps"] < DETECTOR["attack_rps"], "the figures are node b's own"
        assert status["detector"]["mode"] == "normal", "node b's own detector sees no flood"
        _, _, metrics = admin.call("GET", "/metrics")
        assert b'shieldwall_mode{mode="under_attack"} 1.0' in metrics
    finally:
        stop.set()
        for thread in floods:
            thread.join(10)
    back = until(lambda: all(mode_of(tmp_path, name) == "normal" for name in NODES), 30.0)
    assert back is not None, "the cluster stepped back to normal by itself"
    ids = {}
    for name in NODES:
        state_dir = tmp_path / f"state-{name}"

        def closed(state_dir: Path = state_dir) -> bool:
            listings = incident_store.shared(state_dir).listings()
            return bool(listings) and all(listing.closed is not None for listing in listings)

        assert until(closed, 10.0) is not None, f"node {name} has no closed incident"
        ids[name] = [listing.id for listing in incident_store.shared(state_dir).listings()]
        incident_store.shared(state_dir).close()
    assert len({tuple(found) for found in ids.values()}) == 1 and len(ids["a"]) == 1, (
        f"one incident for the whole cluster, kept on every node: {ids}"
    )
    incident, _ = store.load(tmp_path / "state-a", ids["a"][0])
    assert incident.peak_mode is Mode.UNDER_ATTACK
    incident_store.shared(tmp_path / "state-a").close()


def test_redis_lost_mid_traffic_costs_no_legitimate_request_and_is_caught_up_after(
    start_shield, redis_server: RedisServer, tmp_path: Path
) -> None:
    port = free_port()
    nodes = start_cluster(start_shield, redis_server, tmp_path, BAN_FAST, admin_port=port)
    nodes["b"].wait_until(lambda: accepts("127.0.0.1", port), 20, "node b's admin listener")
    admin = Admin(port, (tmp_path / "state-b" / "admin" / "token").read_text().strip())

    def link() -> dict[str, Any]:
        cluster: dict[str, Any] = admin.json("GET", "/api/v1/status").get("cluster", {})
        return cluster

    assert until(lambda: link().get("nodes") == ["a", "b", "c"], 10.0) is not None, link()
    failures: list[str] = []
    served = 0
    stop = threading.Event()

    def visitors() -> None:
        nonlocal served
        for round_ in range(400):  # bounded: ~20 s at most
            if stop.is_set():
                return
            for index, name in enumerate(NODES):
                with connect_from(f"127.0.80.{index + 1}", nodes[name]) as conn:
                    status = conn.request("GET", "/hello").status
                if status == 200:
                    served += 1
                else:
                    failures.append(f"round {round_}, node {name}: {status}")
            time.sleep(0.05)

    thread = threading.Thread(target=visitors)
    thread.start()
    try:
        time.sleep(1.0)
        redis_server.kill()
        assert until(lambda: link().get("degraded") is True, 10.0) is not None, link()
        _, _, metrics = admin.call("GET", "/metrics")
        assert b"shieldwall_cluster_redis_up 0.0" in metrics
        # Redis is away: a ban on node a holds on node a; the others learn of it when Redis returns.
        with connect_from("127.0.0.90", nodes["a"]) as conn:
            assert [conn.request("GET", "/wp-x").status for _ in range(3)] == [403, 403, 403]
        assert is_refused_at_accept("127.0.0.90", nodes["a"])
        assert not refused_quickly("127.0.0.90", nodes["b"])
        redis_server.start()
        took = until(lambda: refused_quickly("127.0.0.90", nodes["b"]), 15.0)
        assert took is not None, "after Redis returned, node a's ban reached node b"
        assert until(lambda: link()["degraded"] is False, 5.0) is not None, link()
        assert link()["losses"] == 1, link()
        time.sleep(1.0)
    finally:
        stop.set()
        thread.join(30)
    assert not failures, failures[:10]
    assert served > 100
    log = (tmp_path / f"{nodes['b'].name}.stderr").read_text()
    assert "lost the cluster's Redis" in log and log.count("connected to the cluster's Redis") >= 2


def test_a_hung_redis_delays_no_request(start_shield, redis_server: RedisServer, tmp_path: Path) -> None:
    """Redis stopped dead (SIGSTOP: connections open, no answer) while visitors come: every request is
    answered, and none waits for Redis (the nodes' cluster limits and links time out in the background)."""
    extra = {
        "rules": [
            {
                "name": "everyone",
                "action": "limit",
                "match": {"path_prefix": "/"},
                "limit": {"rate": 10_000.0, "burst": 1000, "per": "ip", "scope": "cluster"},
            }
        ],
    }
    nodes = start_cluster(start_shield, redis_server, tmp_path, extra)
    slowest, failures, served = 0.0, [], 0
    with contextlib.ExitStack() as stack:
        conns = {name: stack.enter_context(connect_from("127.0.0.95", nodes[name])) for name in NODES}
        paused_at = time.monotonic() + 1.0
        resumed = False
        deadline = time.monotonic() + 6.0
        redis_paused = False
        while time.monotonic() < deadline:  # bounded: 6 s, ~20 requests/s to each node
            now = time.monotonic()
            if not redis_paused and now >= paused_at:
                redis_server.pause()
                redis_paused = True
            if redis_paused and not resumed and now >= paused_at + 3.0:
                redis_server.resume()
                resumed = True
            for name, conn in conns.items():
                started = time.monotonic()
                status = conn.request("GET", "/hello").status
                slowest = max(slowest, time.monotonic() - started)
                if status == 200:
                    served += 1
                else:
                    failures.append(f"node {name}: {status}")
            time.sleep(0.05)
        if not resumed:
            redis_server.resume()
    print(f"hung Redis: {served} requests served, the slowest in {slowest * 1000:.1f} ms")
    assert not failures, failures[:10]
    assert served > 200
    assert slowest < 0.25, f"a request waited {slowest:.2f} s: something on the request path waited for Redis"
    logs = [(tmp_path / f"{nodes[name].name}.stderr").read_text() for name in NODES]
    assert any("Redis unreachable for the cluster limits" in log for log in logs), "the hang was felt"
    assert any("lost the cluster's Redis" in log for log in logs)
