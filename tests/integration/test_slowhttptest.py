"""Slow HTTP attacks with the real slowhttptest against the real proxy: slow headers (slowloris),
slow body (R-U-Dead-Yet) and slow read. The proxy must cut every attacking connection shortly after
its deadline while an ordinary client, polling all along, gets 200 every time.

Judged from slowhttptest's CSV: all connections were established (the attack was real), and the run
ended, for lack of open connections, by the time the last connection opened plus the deadline plus
a little slack. slowhttptest ends a run early only when no connection is left open."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass, field

import pytest

from helpers import procs, slowhttp
from helpers.rawhttp import get

pytestmark = pytest.mark.integration

CONNECTIONS, RATE = 200, 100  # moderate: fast and stable on 2 cores
LENGTH = 15  # slowhttptest's own time limit; a proxy that never cuts runs into it
SLACK = 3.0  # deadline sweep (0.5 s) + slowhttptest seeing the close + its 1 s sampling
DEADLINES = {
    "header_timeout": 3.0,
    "body_grace": 2.0,
    "min_body_rate": 2000,
    "send_timeout": 3.0,
    # deadlines are under test here, not per-client caps: let all attack connections in
    "max_connections_per_ip": 1000,
    "max_connections_per_prefix": 2000,
}


@dataclass(frozen=True)
class Mode:
    args: list[str]
    target: str
    deadline: float  # seconds from a connection's start until the proxy should cut it


MODES = {
    # a header line every second, never the blank line: header_timeout counts from the first byte
    "slow-headers": Mode(["-H", "-i", "1", "-x", "10"], "/hello", DEADLINES["header_timeout"]),
    # complete head, then ~10 bytes/s of an 8 KB body: under min_body_rate once body_grace is over
    "slow-body": Mode(["-B", "-i", "1", "-x", "10", "-s", "8192"], "/sink", DEADLINES["body_grace"]),
    # a 5 MB answer through a 1-16 byte receive window: send_timeout runs once the proxy's buffers are
    # full, which for 200 such downloads takes a few seconds more on 2 cores (hence the extra 4 s)
    "slow-read": Mode(
        ["-X", "-w", "1", "-y", "16", "-n", "1", "-z", "4096", "-k", "1"],
        "/bytes?n=5000000",
        DEADLINES["send_timeout"] + 4.0,
    ),
}


@pytest.fixture(scope="module")
def shield(start_module_shield) -> procs.ServerProcess:
    return start_module_shield({"limits": DEADLINES, "access_log": {"path": "off"}})


@dataclass
class OrdinaryClient:
    """One GET every 100 ms on a fresh connection, in a thread, until stopped (bounded anyway)."""

    address: tuple[str, int]
    max_requests: int = 400
    outcomes: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ordinary-client", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set() and len(self.outcomes) < self.max_requests:
            started = time.monotonic()
            try:
                response = get(self.address, "/hello")
                self.outcomes.append(str(response.status))
            except OSError as exc:
                self.outcomes.append(f"{exc.__class__.__name__}: {exc}")
            self._stop.wait(max(0.0, 0.1 - (time.monotonic() - started)))

    def stop(self) -> list[str]:
        self._stop.set()
        self._thread.join(10)
        return self.outcomes


@pytest.mark.parametrize("name", list(MODES))
def test_slow_attack_is_cut_at_its_deadline(shield, tmp_path, name):
    mode = MODES[name]
    client = OrdinaryClient(shield.address)
    try:
        samples = slowhttp.run(
            mode.args, shield.url + mode.target, tmp_path / name, CONNECTIONS, RATE, LENGTH
        )
    finally:
        outcomes = client.stop()
    table = "\n".join(f"  {s}" for s in samples)
    print(f"{name}: slowhttptest samples\n{table}\nordinary client: {len(outcomes)} requests")

    peak = max(s.connected for s in samples)
    assert peak >= 0.9 * CONNECTIONS, f"the attack never got going ({peak} connected at most):\n{table}"
    ended = samples[-1].second + 1  # the run stops within the second after its last sample
    bound = math.ceil(CONNECTIONS / RATE) + mode.deadline + SLACK
    assert ended < LENGTH, f"connections still open at slowhttptest's {LENGTH} s limit:\n{table}"
    assert ended <= bound, f"last connection cut after ~{ended} s, expected by {bound:.0f} s:\n{table}"

    failures = [outcome for outcome in outcomes if outcome != "200"]
    assert len(outcomes) >= 20, f"the ordinary client only managed {len(outcomes)} requests"
    assert not failures, f"ordinary client: {len(failures)} of {len(outcomes)} failed: {failures[:5]}"
