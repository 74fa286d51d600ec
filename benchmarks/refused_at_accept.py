"""What a banned client costs shieldwall: CPU per connection refused at accept (the ban checked before a
byte is read, the connection aborted), the path a flood from banned addresses takes without the
nftables mirror. With the mirror the kernel drops those packets before any process sees them.

One shieldwall worker pinned to CPU 1 (as `make bench` runs it), a manual ban on 127.0.0.77, and this
process on CPU 0 opening connections from that address, 32 at a time (bounded in count and time), each
of which the shield aborts. The shield's processes' CPU time (/proc) is divided by the connections.
Loopback only; every process it starts is stopped by PID on the way out.

    .venv/bin/python -m benchmarks.refused_at_accept [--connections 20000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.procstat import cpu_ticks, cpu_time_between
from benchmarks.servers import Servers, shield_config_toml
from shieldwall.control.state import Pin, write_pin
from shieldwall.detector.events import Mode
from shieldwall.drill.processes import free_port
from shieldwall.limiter.bans import Ban
from shieldwall.net.networks import NetworkSet
from shieldwall.state import manual_bans

BANNED = "127.0.0.77"
MAX_SECONDS = 60.0


def refused(port: int) -> bool:
    """One connection from BANNED: True when the shield closed it without an answer."""
    with socket.socket() as sock:
        sock.settimeout(2.0)
        sock.bind((BANNED, 0))
        sock.connect(("127.0.0.1", port))
        try:
            return sock.recv(1) == b""
        except ConnectionResetError:
            return True


async def flood(port: int, total: int, concurrency: int) -> int:
    """`total` connections from BANNED, `concurrency` at a time (as a flood's would overlap, so the
    shield accepts several per wake-up, as in make bench's 32 connections); the number refused."""
    remaining = total
    refusals = 0
    deadline = time.monotonic() + MAX_SECONDS

    async def one_after_another() -> None:
        nonlocal remaining, refusals
        while remaining > 0 and time.monotonic() < deadline:
            remaining -= 1
            reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(BANNED, 0))
            try:
                if await reader.read(1) == b"":
                    refusals += 1
            except ConnectionResetError:
                refusals += 1
            writer.close()

    await asyncio.gather(*(one_after_another() for _ in range(concurrency)))
    return refusals


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32, help="connections open at once")
    args = parser.parse_args()
    os.sched_setaffinity(0, {0})
    with tempfile.TemporaryDirectory(prefix="shieldwall-refused-") as tmp, Servers(Path(tmp)) as servers:
        workdir = Path(tmp)
        state_dir = workdir / "state"
        origin = servers.nginx_origin(cpu=0)
        now = time.time()
        manual_bans.add(state_dir, Ban(BANNED, now + 3600, "benchmark", "manual", 0, now), NetworkSet(()))
        write_pin(state_dir, Pin(Mode.NORMAL, None, "refused_at_accept"))
        port = free_port()
        conf = workdir / "shield.toml"
        conf.write_text(
            shield_config_toml(
                port=port, origin_port=origin.port, access_log=None, rate_limited=False, state_dir=state_dir
            ).replace("[bans]\nenabled = false", "[bans]\nenabled = true")
        )
        argv = [sys.executable, "-m", "shieldwall", "run", "--config", str(conf), "--workers", "1"]
        shield = servers.start("shieldwall", argv, port, cpu=1)
        for _ in range(200):  # warm-up; the worker polls the ban files twice a second
            if refused(port):
                break
            time.sleep(0.05)
        else:
            raise SystemExit("the shield never refused the banned address")
        pids = shield.processes()
        before, started = cpu_ticks(pids), time.monotonic()
        done = asyncio.run(flood(port, args.connections, args.concurrency))
        elapsed = time.monotonic() - started
        cpu = cpu_time_between(before, cpu_ticks(pids))
        print(f"{done:,} connections from a banned address in {elapsed:.1f} s ({done / elapsed:,.0f}/s)")
        print(
            f"shieldwall CPU per connection refused at accept: {cpu.total / done * 1e6:.1f} µs "
            f"({cpu.system / cpu.total:.0%} in the kernel)"
        )


if __name__ == "__main__":
    main()
