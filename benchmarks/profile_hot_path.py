"""Where a shieldwall worker spends its CPU under load: the worker runs in this process under cProfile
while wrk loads it, then the top functions by own time (tottime) are printed.

    .venv/bin/python -m benchmarks.profile_hot_path [--scenario keepalive|keepalive-log|reject|close]

It is the same worker `shieldwall run` forks (shieldwall.dataplane.worker.run_worker, same config as
`make bench`, from the same TOML), pinned to the proxy CPU, with the nginx origin and wrk on the other.
cProfile makes every Python call several times dearer, so the requests/s it prints are far below the
benchmark's; what counts is the ranking. Only this process's main thread is profiled.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks.run import pick_cores
from benchmarks.scenarios import SCENARIOS, Scenario
from benchmarks.servers import Servers, shield_config_toml
from benchmarks.wrk import parse_wrk_output, write_done_hook, wrk_command
from shieldwall.config import load_config
from shieldwall.dataplane.listen import bind_group
from shieldwall.dataplane.worker import run_worker
from shieldwall.drill.processes import free_port

_POLL = 0.2  # seconds between checks whether wrk has finished
_OVERRUN = 15.0  # seconds wrk may run past its duration before it is killed


class LoadDuringWorker:
    """Starts wrk once the worker accepts (its notify_ready hook) and, when wrk is done, sends this
    process SIGTERM: the worker's own stop signal, so it drains and run_worker returns."""

    def __init__(self, argv: list[str], duration: float) -> None:
        self.argv = argv
        self.deadline = 0.0
        self.duration = duration
        self.popen: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.popen = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.deadline = time.monotonic() + self.duration + _OVERRUN
        asyncio.get_running_loop().call_later(_POLL, self._poll)

    def _poll(self) -> None:
        assert self.popen is not None
        if self.popen.poll() is None and time.monotonic() < self.deadline:
            asyncio.get_running_loop().call_later(_POLL, self._poll)
            return
        os.kill(os.getpid(), signal.SIGTERM)

    def output(self) -> str:
        """wrk's stdout once it has ended (killed first if it is still running)."""
        if self.popen is None:
            raise RuntimeError("the worker never became ready, so wrk never ran")
        if self.popen.poll() is None:
            self.popen.kill()
        stdout, stderr = self.popen.communicate(timeout=_OVERRUN)
        if self.popen.returncode != 0:
            raise RuntimeError(f"wrk exited with {self.popen.returncode}: {stderr.strip()}")
        return stdout


def profile_worker(workdir: Path, servers: Servers, scenario: Scenario, duration: float) -> cProfile.Profile:
    load_cpu, proxy_cpu = pick_cores()
    origin = servers.nginx_origin(load_cpu)
    port = free_port()
    config = workdir / "shieldwall.toml"
    access_log = workdir / "access.log" if scenario.access_log else None
    config.write_text(
        shield_config_toml(
            port=port,
            origin_port=origin.port,
            access_log=access_log,
            rate_limited=scenario.rate_limited,
            state_dir=workdir / "state",
        )
    )
    settings = load_config(config)
    listener = settings.listeners[0]
    (sock,) = bind_group("127.0.0.1", port, 1)
    argv = wrk_command(
        f"http://127.0.0.1:{port}/",
        script=write_done_hook(workdir),
        cpu=load_cpu,
        duration=duration,
        connections=32,
        headers=scenario.headers,
    )
    load = LoadDuringWorker(argv, duration)
    os.sched_setaffinity(0, {proxy_cpu})
    profiler = cProfile.Profile()
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        profiler.enable()
        code = run_worker(settings, [(listener, sock)], 0, notify_ready=load.start)
        profiler.disable()
    finally:
        # run_worker leaves the stop signals at SIG_DFL (a worker's setting): back to ours, which clean up
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        sock.close()
    result = parse_wrk_output(load.output())
    print(
        f"worker exit {code}; scenario {scenario.key}: {result.requests} responses in "
        f"{result.duration_s:.1f} s ({result.rps:,.0f}/s under the profiler), {result.non2xx} non-2xx, "
        f"{result.socket_errors} socket errors"
    )
    return profiler


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.profile_hot_path", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--scenario", choices=[s.key for s in SCENARIOS], default="keepalive")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds of load (5)")
    parser.add_argument("--top", type=int, default=25, help="functions to list (25)")
    parser.add_argument("--sort", default="tottime", choices=["tottime", "cumtime", "ncalls"])
    args = parser.parse_args(argv)
    if not 0 < args.duration <= 60:
        parser.error("--duration must be in (0, 60]")
    scenario = next(s for s in SCENARIOS if s.key == args.scenario)
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))
    with tempfile.TemporaryDirectory(prefix="shieldwall-profile-") as tmp, Servers(Path(tmp)) as servers:
        os.chmod(tmp, 0o755)  # nginx workers run as nobody when started by root: let them in
        profiler = profile_worker(Path(tmp), servers, scenario, args.duration)
    stats = pstats.Stats(profiler, stream=sys.stdout)
    stats.strip_dirs().sort_stats(args.sort).print_stats(args.top)
    return 0


if __name__ == "__main__":
    sys.exit(main())
