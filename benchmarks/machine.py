"""The facts a benchmark figure is meaningless without: when, on what CPU, with which versions."""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from importlib.metadata import version
from pathlib import Path


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() == "model name":
            return value.strip()
    return platform.processor() or "unknown"


def _tool_version(argv: list[str]) -> str:
    """The first line a tool prints about its version (nginx writes it to stderr, wrk exits 1)."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=5, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"unavailable ({exc})"
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0].strip() if lines else "unknown"


def source_revision() -> str:
    """The commit measured, and whether the work tree differed from it (figures move with the code)."""
    repo = Path(__file__).resolve().parents[1]
    head = _tool_version(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"])
    status = subprocess.run(
        ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True, text=True, timeout=5, check=False,
    )  # fmt: skip
    return f"commit {head}" + (" with uncommitted changes" if status.stdout.strip() else "")


def describe(cores: tuple[int, int]) -> list[str]:
    load_cpu, proxy_cpu = cores
    now = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return [
        f"date: {now}",
        f"machine: nproc {len(os.sched_getaffinity(0))}, {cpu_model()}, Linux {platform.release()}",
        f"tools: {_tool_version(['nginx', '-v'])}; {_tool_version(['wrk', '-v'])}",
        f"shieldwall {version('shieldwall')} ({source_revision()}) on Python {platform.python_version()}, "
        f"uvloop {version('uvloop')}, httptools {version('httptools')}; "
        "started as `python -m shieldwall run --config FILE --workers 1`",
        f"pinning: proxies on CPU {proxy_cpu}; wrk and the nginx origin on CPU {load_cpu}",
        load_average("at start"),
    ]


def load_average(when: str) -> str:
    """Other work on the machine skews every figure; the load average is the cheapest hint of it."""
    one, five, fifteen = os.getloadavg()
    return f"load average {when}: {one:.2f} {five:.2f} {fifteen:.2f}"
