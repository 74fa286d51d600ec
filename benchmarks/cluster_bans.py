"""What a wave of bans costs the cluster's Redis: publishing them (the Lua script, in the batches a node's
agent sends), reading the whole set back (what a node does on every reconnect), and Redis's memory.

Starts its own redis-server on a free loopback port (stopped by PID on the way out) and prints one line
per phase. The figures feed docs/scaling.md.

    .venv/bin/python -m benchmarks.cluster_bans [--bans 100000] [--batch 500]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from pathlib import Path

import redis

from shieldwall.cluster.bans import BanBatch, ClusterBans
from shieldwall.cluster.connection import aclose, async_client
from shieldwall.cluster.keys import Keys
from shieldwall.drill.processes import Child, free_port
from shieldwall.limiter.bans import Ban


def address(index: int) -> str:
    return f"10.{index >> 16 & 255}.{index >> 8 & 255}.{index & 255}"


async def measure(url: str, total: int, batch: int) -> None:
    client = async_client(url, 10.0)
    bans = ClusterBans(client, Keys("bench"))
    now = time.time()
    started = time.perf_counter()
    slowest = 0.0
    for first in range(0, total, batch):
        chunk = [Ban(address(i), now + 3600, "bench", "auto", 0, now) for i in range(first, first + batch)]
        begun = time.perf_counter()
        await bans.publish(BanBatch("bench", chunk))
        slowest = max(slowest, time.perf_counter() - begun)
    took = time.perf_counter() - started
    print(
        f"publish: {total:,} bans in batches of {batch}: {took:.2f} s "
        f"({took / total * 1e6:.1f} µs a ban, slowest batch {slowest * 1000:.1f} ms)"
    )
    started = time.perf_counter()
    held = await bans.snapshot(now)
    took = time.perf_counter() - started
    print(f"snapshot (a reconnect): {len(held.bans):,} bans read back and parsed in {took:.2f} s")
    memory = await client.info("memory")
    print(f"Redis used_memory: {memory['used_memory'] / 2**20:.1f} MiB for {total:,} bans")
    await aclose(client)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bans", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500, help="bans per published batch")
    args = parser.parse_args()
    binary = shutil.which("redis-server")
    if binary is None:
        sys.exit("redis-server is missing: `make test` installs it (or apt-get install redis-server)")
    with tempfile.TemporaryDirectory(prefix="shieldwall-cluster-bans-") as tmp:
        port = free_port()
        argv = [binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--dir", tmp]
        child = Child.spawn("redis", argv, Path(tmp) / "redis.log", port=port)
        try:
            probe = redis.Redis(host="127.0.0.1", port=port)
            child.wait_until(lambda: _pings(probe), 10.0, "PING answered")
            probe.close()
            asyncio.run(measure(f"redis://127.0.0.1:{port}/0", args.bans, args.batch))
        finally:
            child.stop()


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False


if __name__ == "__main__":
    main()
