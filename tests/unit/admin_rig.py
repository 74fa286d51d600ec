"""A control loop fed real workers' seconds (through their wire format) and the admin app over it, for
the admin API's unit tests: FastAPI's TestClient talks to the app in memory, no socket."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.testclient import TestClient

from shieldwall.admin.app import create_app
from shieldwall.admin.context import AdminContext
from shieldwall.config.load import parse_config
from shieldwall.config.schema import Settings
from shieldwall.control.loop import ControlLoop
from shieldwall.control.state import PIN_FILE, StateReader, control_dir
from shieldwall.detector.config import DetectorConfig
from shieldwall.detector.counters import Answered, Outcome, SecondCounters

WALL0 = 1_800_000_000.0
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


class AdminRig:
    def __init__(self, tmp_path: Path, config: dict[str, Any] | None = None, **app_options: Any) -> None:
        raw = {"server": {"state_dir": str(tmp_path / "state")}, **(config or {})}
        self.settings: Settings = parse_config(raw)
        self.state_dir = self.settings.server.state_dir
        self.control = ControlLoop(DetectorConfig(warmup=5, min_rps=5.0, hold=5.0), rng=random.Random(1))
        self.pins = StateReader(control_dir(self.state_dir) / PIN_FILE)
        self.app: FastAPI = create_app(self.control, self.settings, pins=self.pins, **app_options)
        self.admin: AdminContext = self.app.state.admin
        self.token = self.admin.tokens.current()
        self.client = TestClient(self.app, raise_server_exceptions=True)
        self.now = 100.0
        self.rng = random.Random(2)
        self.outcomes = [0] * len(Outcome)
        self.origin_responses = 0

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def second(
        self,
        *,
        allow: int = 20,
        block: int = 0,
        answered: tuple[Answered, ...] = (),
        stats: dict[str, int] | None = None,
    ) -> None:
        """One second of one worker's traffic into the control loop, and its tick (as process.py does)."""
        counters = SecondCounters(0, self.now, rng=self.rng)
        for n in range(allow):
            ip = f"198.51.100.{n % 200 + 1}"
            counters.request(0, Outcome.ALLOW)
            counters.origin_start()
            counters.origin_done(200, 0.003 * (n % 10 + 1))
            counters.sketch(ip, (ip, "198.51.100.0/24", "/news", BROWSER))
        for n in range(block):
            ip = f"203.0.113.{n % 200 + 1}"
            counters.request(0, Outcome.BLOCK)
            counters.sketch(ip, (ip, "203.0.113.0/24", "/wp-login.php", "curl/8"))
        for answer in answered:
            counters.answer(answer)
        self.outcomes[Outcome.ALLOW] += allow
        self.outcomes[Outcome.BLOCK] += block
        self.origin_responses += allow
        self.control.receive(counters.snapshot_and_reset(self.now + 1.0, stats).to_bytes())
        self.now += 1.0
        self.control.tick(self.now, WALL0 + self.now)
        self.admin.totals.add(self.control.last_second)

    def close(self) -> None:
        self.client.close()
