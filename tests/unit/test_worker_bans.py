"""A worker's bans and the store: batched saves, a final save, sharing a file across a reload, manual bans
arriving from the CLI's file, and a broken state directory that never breaks the sweeper."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from shieldwall.config import parse_config
from shieldwall.dataplane.worker_bans import SAVE_INTERVAL, WorkerBans
from shieldwall.limiter.bans import Ban
from shieldwall.state import ban_store

T0 = 1_800_000_000.0
IP, PREFIX = "198.51.100.7", "198.51.100.0/24"


def worker(tmp_path: Path, worker_id: int = 0) -> WorkerBans:
    settings = parse_config(
        {"server": {"state_dir": str(tmp_path)}, "bans": {"offences": 2, "durations": [60.0, 600.0]}}
    )
    return WorkerBans(settings, worker_id, T0)


def saved(tmp_path: Path, writer: str = "worker-0") -> list[str]:
    return [ban.target for ban in ban_store.load(tmp_path, writer, T0).bans]


def ban_now(bans: WorkerBans, ip: str, now: float) -> None:
    assert bans.offence(ip, PREFIX, now) is None  # offences = 2
    assert bans.offence(ip, PREFIX, now) is not None


def test_bans_are_saved_in_batches_and_once_more_at_the_end(tmp_path: Path) -> None:
    bans = worker(tmp_path)
    ban_now(bans, IP, T0)
    bans.sync(T0)
    assert saved(tmp_path) == [IP], "the first change is saved at once"
    ban_now(bans, "198.51.100.8", T0 + 1)
    bans.sync(T0 + 1)
    assert saved(tmp_path) == [IP], "the next waits for SAVE_INTERVAL"
    bans.sync(T0 + SAVE_INTERVAL)
    assert sorted(saved(tmp_path)) == [IP, "198.51.100.8"]
    ban_now(bans, "198.51.100.9", T0 + SAVE_INTERVAL + 0.1)
    bans.sync(T0 + SAVE_INTERVAL + 0.2, final=True)
    assert "198.51.100.9" in saved(tmp_path), "a graceful stop saves what the interval held back"


def test_a_restarted_worker_keeps_its_bans(tmp_path: Path) -> None:
    first = worker(tmp_path)
    first.offence(IP, PREFIX, T0)
    first.offence(IP, PREFIX, T0)
    first.sync(T0, final=True)
    again = worker(tmp_path)
    assert again.check(IP, PREFIX, T0 + 10) is not None


def test_two_generations_of_one_worker_do_not_drop_each_others_bans(tmp_path: Path) -> None:
    old, new = worker(tmp_path), worker(tmp_path)  # a rolling reload: both are worker 0 for a while
    new.offence("203.0.113.1", "203.0.113.0/24", T0)
    new.offence("203.0.113.1", "203.0.113.0/24", T0)
    new.sync(T0, final=True)
    old.offence("203.0.113.2", "203.0.113.0/24", T0 + 1)
    old.offence("203.0.113.2", "203.0.113.0/24", T0 + 1)
    old.sync(T0 + 1, final=True)  # the draining worker's last save
    assert sorted(saved(tmp_path)) == ["203.0.113.1", "203.0.113.2"]


def test_a_manual_ban_reaches_the_worker_at_its_next_sync(tmp_path: Path) -> None:
    bans = worker(tmp_path)
    with ban_store.editing_manual(tmp_path, T0) as manual:
        manual.bans.append(Ban(PREFIX, T0 + 3600, "test", "manual", 0, T0))
    assert bans.check(IP, PREFIX, T0) is None
    bans.sync(T0 + 0.5)
    assert bans.check(IP, PREFIX, T0 + 1) is not None, "a /24 ban covers its addresses"


def test_a_broken_state_dir_is_logged_never_raised(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bans = worker(tmp_path)
    ban_now(bans, IP, T0)
    shutil.rmtree(tmp_path / "bans")
    (tmp_path / "bans").write_text("not a directory")  # root ignores permissions, not this
    with caplog.at_level(logging.ERROR, logger="shieldwall.bans"):
        bans.sync(T0, final=True)
        bans.sync(T0 + 0.5, final=True)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1, "logged once a minute, not at every tick"
    assert bans.check(IP, PREFIX, T0 + 1) is not None, "the ban stays in force in the worker"
