"""What the drill's two servers (the test origin, the campaign site) share as programs: the --listen
argument, and serving until SIGTERM/SIGINT after announcing the port on stdout (the parent waits for
that line: processes.read_announced_port)."""

from __future__ import annotations

import argparse
import asyncio
import signal


def parse_listen(value: str) -> tuple[str, int]:
    """ "127.0.0.1:0" → ("127.0.0.1", 0); "[::1]:8080" → ("::1", 8080)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


async def serve_until_stopped(server: asyncio.AbstractServer, announce: str) -> None:
    """Print `announce` (e.g. "origin listening on 127.0.0.1:PORT"), serve until SIGTERM or SIGINT."""
    print(announce, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    server.close()
