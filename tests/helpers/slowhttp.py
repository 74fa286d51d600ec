"""Run the real slowhttptest (Debian package) and read its CSV report, never its coloured stdout."""

from __future__ import annotations

import csv
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Sample:
    """One CSV row: slowhttptest's view of its connections at second `second` of the run."""

    second: int
    closed: int
    pending: int
    connected: int
    service_available: int  # slowhttptest's own probe: non-zero while the target answers


def read_csv(path: Path) -> list[Sample]:
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows and rows[0] == ["Seconds", "Closed", "Pending", "Connected", "Service Available"], rows[:1]
    return [Sample(*map(int, row)) for row in rows[1:] if row]


def run(
    mode_args: list[str],
    url: str,
    prefix: Path,
    connections: int,
    rate: int,
    length: int,
) -> list[Sample]:
    """slowhttptest against `url` (loopback only) for at most `length` s; its samples, one per second."""
    assert url.startswith("http://127."), "slowhttptest only ever targets loopback here"
    argv = [
        "slowhttptest", *mode_args,
        "-u", url,
        "-c", str(connections),
        "-r", str(rate),
        "-l", str(length),
        "-p", "3",
        "-g", "-o", str(prefix),
    ]  # fmt: skip
    with Path(f"{prefix}.stdout").open("wb") as log:
        subprocess.run(
            argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, timeout=length + 15, check=True
        )
    return read_csv(Path(f"{prefix}.csv"))
