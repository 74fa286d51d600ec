"""control/firewall_mirror.py against a fake `nft` (a script that keeps what it was given and answers
as told): what it applies and when, the status it shows, and that a failure is logged once with what to
do. The real nft, in a network namespace: tests/integration/test_firewall_netns.py."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from shieldwall.admin.metrics import Totals, exposition, registry
from shieldwall.config.detector_schema import Detector
from shieldwall.config.load import parse_config
from shieldwall.control.firewall_mirror import RETRY, FirewallMirror
from shieldwall.control.loop import ControlLoop
from shieldwall.control.settings import detector_config
from shieldwall.control.status import StatusBook
from shieldwall.limiter.bans import Ban
from shieldwall.state import ban_store

FAKE_NFT = """\
import json, pathlib, sys, time
here = pathlib.Path(__file__).parent
payload = sys.stdin.buffer.read()
with open(here / "runs.jsonl", "ab") as runs:
    runs.write(payload + b"\\n")
answer = json.loads((here / "answer.json").read_text())
if answer.get("fail_deltas") and b'"delete"' in payload:
    sys.stderr.write("Error: Could not process rule: No such file or directory\\n")
    sys.exit(1)
time.sleep(answer.get("sleep", 0))
sys.stderr.write(answer.get("stderr", ""))
sys.exit(answer.get("code", 0))
"""


class Rig:
    def __init__(self, tmp_path: Path, **firewall: Any) -> None:
        self.dir = tmp_path
        self.state_dir = tmp_path / "state"
        self.nft = tmp_path / "nft"
        (tmp_path / "nft.py").write_text(FAKE_NFT)
        self.nft.write_text(f"#!/bin/sh\nexec {sys.executable} {tmp_path / 'nft.py'}\n")
        self.nft.chmod(0o755)
        self.answer()
        self.until = time.time() + 600
        settings = parse_config(
            {
                "server": {"state_dir": str(self.state_dir)},
                "bans": {"allowlist": ["192.0.2.0/24"]},
                "firewall": {"nftables": True, "nft": str(self.nft), **firewall},
            }
        )
        self.mirror = FirewallMirror(settings)
        self.status = StatusBook()

    def answer(self, **answer: Any) -> None:
        (self.dir / "answer.json").write_text(json.dumps(answer))

    def ban(self, *targets: str) -> None:
        """Replace the manual bans with these, each ending at the same time (so a target banned again
        is the same element)."""
        bans = [Ban(target, self.until, "t", "manual", 0, self.until - 600) for target in targets]
        ban_store.save(self.state_dir, "manual", bans)

    def runs(self) -> list[list[dict[str, Any]]]:
        path = self.dir / "runs.jsonl"
        if not path.exists():
            return []
        return [json.loads(line)["nftables"] for line in path.read_bytes().splitlines()]

    def step(self, now: float) -> None:
        asyncio.run(self.mirror.step(now))


def added(commands: list[dict[str, Any]]) -> list[Any]:
    return [elem for c in commands if "element" in c.get("add", {}) for elem in c["add"]["element"]["elem"]]


def test_applies_the_bans_then_only_what_changes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rig = Rig(tmp_path)
    rig.ban("203.0.113.7", "192.0.2.9")  # the second is allowlisted
    now = time.time()
    with caplog.at_level(logging.INFO, "shieldwall.control"):
        rig.step(now)
    [first] = rig.runs()
    assert [e["elem"]["val"] for e in added(first)] == ["203.0.113.7"]
    assert 599 <= added(first)[0]["elem"]["timeout"] <= 600
    status = rig.mirror.status
    assert (status["ok"], status["elements"], status["left_out_allowlisted"], status["error"]) == (
        True,
        1,
        1,
        None,
    )
    assert "table inet shieldwall holds 1 banned addresses" in caplog.text

    rig.step(now + 1)  # nothing changed: nft is not run
    assert len(rig.runs()) == 1
    rig.ban("203.0.113.7", "2001:db8::5")
    rig.step(now + 2)
    assert [e["elem"]["val"] for e in added(rig.runs()[-1])] == ["2001:db8::5"]
    assert (status["elements_v4"], status["elements_v6"]) == (1, 1)


def test_a_failed_delta_is_followed_by_a_full_rewrite_at_once(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.ban("203.0.113.7", "203.0.113.8")
    now = time.time()
    rig.step(now)
    rig.answer(fail_deltas=True)  # as if someone deleted an element behind our back
    rig.ban("203.0.113.8")
    rig.step(now + 1)
    runs = rig.runs()
    assert len(runs) == 3
    assert any("delete" in c for c in runs[1])
    assert any("flush" in c and "set" in c["flush"] for c in runs[2])
    assert [e["elem"]["val"] for e in added(runs[2])] == ["203.0.113.8"]
    assert rig.mirror.status["ok"] and rig.mirror.status["elements"] == 1


def test_not_permitted_is_logged_once_with_what_to_do_and_retried_later(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rig = Rig(tmp_path)
    rig.answer(code=1, stderr="netlink: Error: cache initialization failed: Operation not permitted\n")
    rig.ban("203.0.113.7")
    now = time.time()
    with caplog.at_level(logging.INFO, "shieldwall.control"):
        rig.step(now)
        rig.step(now + 1)  # within RETRY: not even tried
        assert len(rig.runs()) == 1
        rig.step(now + RETRY + 1)  # tried again, same error: not logged again
        assert len(rig.runs()) == 2
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "CAP_NET_ADMIN" in errors[0] and "Operation not permitted" in errors[0]
    assert "the shield enforces the bans itself" in errors[0]
    status = rig.mirror.status
    assert not status["ok"] and "CAP_NET_ADMIN" in status["error"] and status["elements"] == 0

    caplog.clear()
    rig.answer()
    with caplog.at_level(logging.INFO, "shieldwall.control"):
        rig.step(now + 2 * RETRY + 2)
    assert status["ok"] and status["elements"] == 1
    assert "holds 1 banned addresses" in caplog.text  # the recovery is said once too


def test_a_missing_nft_says_to_install_it(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rig = Rig(tmp_path, nft=str(tmp_path / "no-such-nft"))
    with caplog.at_level(logging.ERROR, "shieldwall.control"):
        rig.step(time.time())
    assert "apt install nftables" in caplog.text and "[firewall] nft" in caplog.text
    assert not rig.mirror.status["ok"]


def test_a_slow_nft_is_killed_after_the_timeout(tmp_path: Path) -> None:
    rig = Rig(tmp_path, timeout=0.5)
    rig.answer(sleep=30)
    started = time.monotonic()
    rig.step(time.time())
    assert time.monotonic() - started < 5
    assert "took more than 0.5 s" in rig.mirror.status["error"]


def test_status_and_metrics_show_the_mirror_only_when_it_is_on(tmp_path: Path) -> None:
    rig = Rig(tmp_path)
    rig.ban("203.0.113.7")

    async def run() -> None:
        rig.mirror.start(rig.status)
        for _ in range(100):
            if rig.mirror.status["ok"]:
                break
            await asyncio.sleep(0.05)
        await rig.mirror.stop()

    asyncio.run(run())
    assert rig.status.extra["firewall"] is rig.mirror.status
    assert rig.status.extra["firewall"]["elements"] == 1
    off = FirewallMirror(parse_config({"server": {"state_dir": str(tmp_path / "other")}}))
    book = StatusBook()
    off.start(book)
    assert book.extra == {}


def metrics(control: ControlLoop) -> dict[str, float]:
    text = exposition(registry(control, Totals())).decode()
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}


def test_metrics_say_whether_the_mirror_works_and_how_many_elements_it_holds() -> None:
    control = ControlLoop(detector_config(Detector()))
    assert "shieldwall_firewall_mirror_ok" not in metrics(control)  # [firewall] nftables off
    control.status.extra["firewall"] = {"ok": True, "elements": 12}
    found = metrics(control)
    assert (found["shieldwall_firewall_mirror_ok"], found["shieldwall_firewall_elements"]) == (1, 12)
    control.status.extra["firewall"]["ok"] = False
    assert metrics(control)["shieldwall_firewall_mirror_ok"] == 0
