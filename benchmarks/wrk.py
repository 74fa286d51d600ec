"""Running wrk and reading its results exactly.

wrk's human summary rounds (5.00s, 1.23ms, 12.3k); its Lua `done` hook sees the exact request count,
duration and latency histogram, so a one-line script prints them after a marker and the benchmark parses
that line only. `summary.errors.status` counts responses that are not 2xx/3xx: for the rejection
scenario that is the number of 429s (nothing else answers non-2xx there), elsewhere it must be 0.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

MARKER = "SHIELDWALL-BENCH"
SOCKET_TIMEOUT = "2s"  # wrk counts a response slower than this as a timeout error
_GRACE = 15.0  # seconds wrk may run past its -d before it is killed

DONE_HOOK = f"""-- written by benchmarks/wrk.py: exact figures for the benchmark, on one line
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "{MARKER} requests=%d duration_us=%d connect=%d read=%d write=%d timeout=%d non2xx=%d p99_us=%d\\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.timeout, e.status,
    latency:percentile(99)))
end
"""

_FIELDS = ("requests", "duration_us", "connect", "read", "write", "timeout", "non2xx", "p99_us")


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int  # responses received in full
    duration_s: float
    socket_errors: int  # connect + read + write + timeout
    non2xx: int  # responses with a status outside 2xx/3xx
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0


def parse_wrk_output(text: str) -> WrkResult:
    """The figures from the DONE_HOOK line in wrk's stdout; ValueError if it is missing or malformed."""
    for line in text.splitlines():
        if line.startswith(MARKER + " "):
            break
    else:
        raise ValueError(f"wrk printed no {MARKER} line (was it run with the done hook script?)")
    values: dict[str, int] = {}
    for item in line.split()[1:]:
        key, sep, number = item.partition("=")
        if not sep or key not in _FIELDS or not number.isdigit():
            raise ValueError(f"unexpected item {item!r} in wrk result line {line!r}")
        values[key] = int(number)
    missing = [key for key in _FIELDS if key not in values]
    if missing:
        raise ValueError(f"wrk result line lacks {', '.join(missing)}: {line!r}")
    return WrkResult(
        requests=values["requests"],
        duration_s=values["duration_us"] / 1e6,
        socket_errors=values["connect"] + values["read"] + values["write"] + values["timeout"],
        non2xx=values["non2xx"],
        p99_ms=values["p99_us"] / 1000,
    )


def write_done_hook(directory: Path) -> Path:
    path = directory / "done.lua"
    path.write_text(DONE_HOOK, encoding="ascii")
    return path


def wrk_command(
    url: str, *, script: Path, cpu: int, duration: float, connections: int, headers: tuple[str, ...] = ()
) -> list[str]:
    """One wrk thread pinned to `cpu`, with the latency histogram and the done hook."""
    argv = ["taskset", "-c", str(cpu), "wrk", "-t1", f"-c{connections}", f"-d{duration:g}s"]
    argv += ["--latency", "--timeout", SOCKET_TIMEOUT, "-s", str(script)]
    for header in headers:
        argv += ["-H", header]
    return [*argv, url]


def run_wrk(argv: list[str], duration: float) -> WrkResult:
    """Run a wrk_command() to completion (killed if it overruns by _GRACE s) and parse its result."""
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=duration + _GRACE, check=False, stdin=subprocess.DEVNULL
    )
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited with {done.returncode}: {done.stderr.strip() or done.stdout.strip()}")
    return parse_wrk_output(done.stdout)
