"""`make bench`: shieldwall against nginx, same origin, same core, server CPU time per request.

For each scenario both proxies run at once (idle except when loaded), one worker each, pinned to one
CPU; wrk and the origin (nginx answering `200 hello`) share the other CPU. Every measured run is one
wrk run against one proxy, with the proxy's utime+stime read before and after; runs alternate between
the proxies so that drift on the machine affects both alike. A 1 s warm-up per proxy comes first
(upstream connections opened, caches warm) and is not counted. Progress goes to stderr; the table
(markdown) to stdout. Method and results: docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from benchmarks.machine import describe, load_average
from benchmarks.procstat import (
    CLOCK_TICKS_PER_SECOND,
    cpu_busy_ticks,
    cpu_ticks,
    cpu_time_between,
    peak_rss_kib,
)
from benchmarks.report import BARE, NGINX, SHIELDWALL, Row, Sample, format_table
from benchmarks.scenarios import SCENARIOS, Scenario, answer_and_keepalive, problems
from benchmarks.servers import Server, Servers
from benchmarks.wrk import run_wrk, write_done_hook, wrk_command

WARMUP_SECONDS = 1.0


def pick_cores() -> tuple[int, int]:
    """(CPU for wrk and the origin, CPU for the proxies): the first two this process may use."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        sys.exit(f"bench: needs 2 CPUs (load on one, proxy on the other); this process may use {allowed}")
    return allowed[0], allowed[1]


def measure(server: Server, argv: list[str], scenario: Scenario, args: argparse.Namespace) -> Sample:
    pids = server.processes()
    proxy_cpu = args.cores[1]
    before, core_before = cpu_ticks(pids), cpu_busy_ticks(proxy_cpu)
    result = run_wrk(argv, args.duration)
    after, core_after = cpu_ticks(pids), cpu_busy_ticks(proxy_cpu)
    spent = cpu_time_between(before, after)
    other = (core_after - core_before) / CLOCK_TICKS_PER_SECOND - spent.total
    return Sample(spent, other, result, tuple(problems(scenario, result)))


def run_scenario(
    servers: Servers, scenario: Scenario, args: argparse.Namespace, origin_port: int, hook: Path
) -> list[Row]:
    load_cpu, proxy_cpu = args.cores
    log, limited = scenario.access_log, scenario.rate_limited
    proxies = {
        NGINX: servers.nginx_proxy(proxy_cpu, origin_port=origin_port, access_log=log, rate_limited=limited),
        SHIELDWALL: servers.shieldwall(
            proxy_cpu, origin_port=origin_port, access_log=log, rate_limited=limited
        ),
    }
    if args.floor and not log:  # the bare proxy writes no access log: no floor for that row
        proxies[BARE] = servers.bare(proxy_cpu, origin_port=origin_port, rate_limited=limited)
    rows = {name: Row(scenario, name) for name in proxies}

    def command(server: Server, duration: float) -> list[str]:
        return wrk_command(
            server.url,
            script=hook,
            cpu=load_cpu,
            duration=duration,
            connections=args.connections,
            headers=scenario.headers,
        )

    try:
        for name, server in proxies.items():
            _progress(f"{scenario.key}: {name} up, pids {server.processes()}; warming up")
            run_wrk(command(server, WARMUP_SECONDS), WARMUP_SECONDS)
            if scenario.rate_limited:
                status, kept = answer_and_keepalive(server.port)
                rows[name].note = f"answers {status}, {'keeps' if kept else 'closes'} the connection"
        for run in range(args.runs):
            order = list(proxies.items())
            for name, server in order if run % 2 == 0 else reversed(order):
                sample = measure(server, command(server, args.duration), scenario, args)
                rows[name].samples.append(sample)
                _progress(
                    f"{scenario.key} run {run + 1}/{args.runs} {name}: "
                    f"{sample.cpu_us_per_request:.1f} µs CPU/req, {sample.wrk.rps:,.0f} req/s, "
                    f"p99 {sample.wrk.p99_ms:.2f} ms; others used CPU {proxy_cpu} for "
                    f"{sample.other_seconds * 1000:.0f} ms" + "".join(f"; {p}" for p in sample.problems)
                )
        for name, server in proxies.items():
            rows[name].peak_rss_kib = peak_rss_kib(server.processes())
    finally:
        for server in proxies.values():
            servers.stop(server)
    return list(rows.values())


def _progress(message: str) -> None:
    print(f"bench: {message}", file=sys.stderr, flush=True)


def _exit_on_sigterm(signum: int, _frame: FrameType | None) -> None:
    sys.exit(128 + signum)  # unwinds through Servers.__exit__, which stops every server we started


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measured wrk run (5)")
    parser.add_argument("--runs", type=int, default=3, help="measured runs per proxy and scenario (3)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument(
        "--only", choices=[s.key for s in SCENARIOS], action="append", help="run only these scenarios"
    )
    parser.add_argument(
        "--no-floor",
        dest="floor",
        action="store_false",
        help="leave out the bare uvloop+httptools proxy (benchmarks.bare_proxy), the stack's floor",
    )
    args = parser.parse_args(argv)
    if not 0 < args.duration <= 60 or not 0 < args.runs <= 10:
        parser.error("--duration must be in (0, 60] and --runs in [1, 10]")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return bench(parse_args(argv))
    except KeyboardInterrupt:
        _progress("interrupted; every server it started is stopped")
        return 130


def bench(args: argparse.Namespace) -> int:
    args.cores = pick_cores()
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    scenarios = [s for s in SCENARIOS if not args.only or s.key in args.only]
    header = describe(args.cores)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="shieldwall-bench-") as tmp, Servers(Path(tmp)) as servers:
        os.chmod(tmp, 0o755)  # nginx workers run as nobody when started by root: let them in
        origin = servers.nginx_origin(args.cores[0])
        hook = write_done_hook(Path(tmp))
        for scenario in scenarios:
            rows += run_scenario(servers, scenario, args, origin.port, hook)
    print("\n".join([*header, load_average("at end")]) + "\n")
    print(format_table(rows, args.runs), end="")
    for row in rows:
        if row.note:
            print(f"- {row.scenario.key} / {row.proxy}: {row.note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
