"""What a cluster costs its Redis: commands, bytes and Redis CPU per second, per node and per request.

Starts one redis-server and N shieldwall nodes (one worker each, `[cluster]` on, the detector pinned to
normal as in `make bench`, a `scope = "cluster"` limit loose enough never to refuse) in front of an nginx
origin, loads every node at once with wrk for a few seconds, and reads Redis's own counters
(INFO commandstats, INFO stats) and its CPU time from /proc before and after. The figures feed
docs/scaling.md. Loopback only; every process it starts is stopped by PID on the way out.

    .venv/bin/python -m benchmarks.cluster_load [--nodes 3] [--duration 10]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import redis

from benchmarks.procstat import cpu_ticks, cpu_time_between
from benchmarks.servers import Server, Servers, shield_config_toml
from benchmarks.wrk import WrkResult, run_wrk, write_done_hook, wrk_command
from shieldwall.control.state import Pin, write_pin
from shieldwall.detector.events import Mode
from shieldwall.drill.processes import free_port

CLUSTER_LIMIT = """
[[rules]]
name = "cluster-wide"
action = "limit"
[rules.limit]
rate = 1000000.0
burst = 1000
per = "ip"
scope = "cluster"
"""


def start_redis(servers: Servers, workdir: Path) -> tuple[Server, redis.Redis]:
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is missing: `make test` installs it (or apt-get install redis-server)")
    port = free_port()
    argv = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    server = servers.start("redis", [*argv, "--dir", str(workdir)], port, cpu=0, ready=None)
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2.0)
    server.wait_until(lambda: _pings(client), 10.0, "PING answered")
    return server, client


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


def start_node(servers: Servers, workdir: Path, name: str, origin_port: int, redis_port: int) -> Server:
    port = free_port()
    state_dir = workdir / f"state-{name}"
    text = shield_config_toml(
        port=port, origin_port=origin_port, access_log=None, rate_limited=False, state_dir=state_dir
    )
    text += f'\n[cluster]\nredis = "redis://127.0.0.1:{redis_port}/0"\nnode = "{name}"\n' + CLUSTER_LIMIT
    conf = workdir / f"{name}.toml"
    conf.write_text(text)
    write_pin(state_dir, Pin(Mode.NORMAL, None, "cluster_load"))  # wrk is a flood by the detector's measure
    argv = [sys.executable, "-m", "shieldwall", "run", "--config", str(conf), "--workers", "1"]
    return servers.start(f"node-{name}", argv, port, cpu=1)


def snapshot(client: redis.Redis) -> dict[str, Any]:
    stats: Any = client.info("stats")
    commands: Any = client.info("commandstats")
    return {
        "in": stats["total_net_input_bytes"],
        "out": stats["total_net_output_bytes"],
        "commands": {name.removeprefix("cmdstat_"): entry["calls"] for name, entry in commands.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=4, help="wrk connections per node")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="shieldwall-cluster-load-") as tmp, Servers(Path(tmp)) as servers:
        workdir = Path(tmp)
        redis_server, client = start_redis(servers, workdir)
        origin = servers.nginx_origin(cpu=0)
        nodes = [
            start_node(servers, workdir, f"n{i}", origin.port, redis_server.port) for i in range(args.nodes)
        ]
        hook = write_done_hook(workdir)
        idle_before, idle_ticks = snapshot(client), cpu_ticks([redis_server.pid])
        time.sleep(args.duration)  # an idle cluster: heartbeats, leases, empty summaries
        idle_after, idle_cpu = snapshot(client), cpu_time_between(idle_ticks, cpu_ticks([redis_server.pid]))
        before, ticks = snapshot(client), cpu_ticks([redis_server.pid])
        commands = [
            wrk_command(node.url, script=hook, cpu=0, duration=args.duration, connections=args.connections)
            for node in nodes
        ]
        with ThreadPoolExecutor(len(commands)) as pool:
            results: list[WrkResult] = list(pool.map(lambda argv: run_wrk(argv, args.duration), commands))
        after, busy_cpu = snapshot(client), cpu_time_between(ticks, cpu_ticks([redis_server.pid]))
        requests = sum(result.requests for result in results)
        version = client.info()["redis_version"]
        print(f"{args.nodes} nodes x 1 worker, {args.duration:g} s each phase, Redis {version}")
        for label, first, last, cpu, served in (
            ("idle", idle_before, idle_after, idle_cpu, 0),
            ("loaded", before, after, busy_cpu, requests),
        ):
            seconds = args.duration
            calls = {
                name: last["commands"].get(name, 0) - first["commands"].get(name, 0)
                for name in last["commands"]
            }
            total = sum(calls.values())
            print(f"\n{label}: {served / seconds:,.0f} requests/s through the nodes")
            print(
                f"  Redis commands/s: {total / seconds:,.0f} ({total / seconds / args.nodes:,.0f} per node)"
            )
            for name, count in sorted(calls.items(), key=lambda item: -item[1])[:8]:
                if count:
                    print(f"    {name:<12} {count / seconds:8,.1f}/s")
            print(
                f"  bytes/s into Redis: {(last['in'] - first['in']) / seconds:,.0f}, "
                f"out of Redis: {(last['out'] - first['out']) / seconds:,.0f}"
            )
            print(f"  Redis CPU: {cpu.total / seconds * 100:.1f} % of one core")
            if served:
                print(f"  Redis CPU per request served: {cpu.total / served * 1e6:.2f} µs")
        errors = sum(result.socket_errors for result in results)
        non2xx = sum(result.non2xx for result in results)
        if errors or non2xx:
            print(f"\n(!) {errors} socket errors and {non2xx} non-2xx responses during the load")


if __name__ == "__main__":
    main()
