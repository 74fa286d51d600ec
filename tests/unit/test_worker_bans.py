"""A worker's bans and the store: batched saves, a final save, sharing a file across a reload, ban chains
surviving a restart, manual bans and lifts arriving from the CLI's file, and a broken state directory
that never breaks the sweeper."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest

from shieldwall.config import parse_config
from shieldwall.dataplane.worker_bans import SAVE_INTERVAL, WorkerBans
from shieldwall.limiter.bans import Ban, Chain, Lift
from shieldwall.state import ban_store

T0 = 1_800_000_000.0
IP, PREFIX = "198.51.100.7", "198.51.100.0/24"
MEMORY = 86400.0  # bans.memory's default


def worker(tmp_path: Path, worker_id: int = 0, now: float = T0, **bans: object) -> WorkerBans:
    settings = parse_config(
        {
            "server": {"state_dir": str(tmp_path)},
            "bans": {"offences": 2, "durations": [60.0, 600.0], **bans},
        }
    )
    return WorkerBans(settings, worker_id, now)


def saved(tmp_path: Path, writer: str = "worker-0") -> list[str]:
    return [ban.target for ban in ban_store.load(tmp_path, writer, T0).bans]


def ban_now(bans: WorkerBans, ip: str, now: float) -> Ban:
    assert bans.offence(ip, PREFIX, now) is None  # offences = 2
    ban = bans.offence(ip, PREFIX, now)
    assert ban is not None
    return ban


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
    chains = ban_store.load(tmp_path, "worker-0", T0).chains
    assert sorted(chain.target for chain in chains) == ["203.0.113.1", "203.0.113.2"]


def test_a_restarted_worker_goes_on_with_the_chain_of_a_ban_that_has_ended(tmp_path: Path) -> None:
    """The worker's file keeps an offender's chain after its ban ends, for `memory` seconds: a worker
    restarted meanwhile gives the offender's next ban the next duration, not the first one again."""
    bans = worker(tmp_path)
    first = ban_now(bans, IP, T0)
    assert (first.level, first.until) == (0, T0 + 60)
    bans.sync(T0, final=True)
    later = first.end + 60  # the ban ended a minute ago
    restarted = worker(tmp_path, now=later)
    assert restarted.check(IP, PREFIX, later) is None, "a kept chain is not a ban"
    assert ban_store.load_all(tmp_path, later).bans == [], "nor is it listed as one"
    second = ban_now(restarted, IP, later)
    assert (second.level, second.until) == (1, later + 600), "the second duration, not the first"
    restarted.sync(later, final=True)
    quiet = second.end + MEMORY  # `memory` seconds of quiet since the second ban ended
    again = worker(tmp_path, now=quiet)
    third = ban_now(again, IP, quiet)
    assert (third.level, third.until) == (0, quiet + 60), "forgotten: back to the first duration"


def test_a_lifted_ban_leaves_no_chain_behind_for_a_restart(tmp_path: Path) -> None:
    """An operator who lifts a ban has judged it wrong: the worker forgets the offender's chain, and
    its file too, so a restart after the lift has run out does not bring the chain back."""
    bans = worker(tmp_path)
    ban = ban_now(bans, IP, T0)
    bans.sync(T0, final=True)
    with ban_store.editing_manual(tmp_path, T0 + 1) as manual:
        manual.lifts.append(Lift(IP, T0 + 1, ban.until))
    bans.sync(T0 + 1, final=True)
    assert bans.check(IP, PREFIX, T0 + 1) is None
    later = ban.end + 10  # the lift has run out with the ban it lifted
    restarted = worker(tmp_path, now=later)
    assert ban_now(restarted, IP, later).level == 0


def test_a_file_from_before_chains_is_taken_back(tmp_path: Path) -> None:
    ban = Ban(IP, T0 + 600, "2 refusals within 60 s", "auto", 1, T0)
    ban_store.save(tmp_path, "worker-0", [ban])  # no chains: as an older shieldwall wrote it
    bans = worker(tmp_path, now=T0 + 1)
    assert bans.check(IP, PREFIX, T0 + 1) == ban
    next_one = ban_now(bans, IP, ban.end + 1)
    assert next_one.level == 2 and next_one.until == ban.end + 1 + 600


def test_saved_chains_stay_within_max_entries(tmp_path: Path) -> None:
    """What the other generation of this worker left in the file and what this one holds may together
    exceed max_entries: the chains remembered longest are kept."""
    bans = worker(tmp_path, max_entries=5)
    ban_store.save(
        tmp_path, "worker-0", [], chains=[Chain(f"192.0.2.{i}", 1, T0 + 100 + i) for i in range(10)]
    )
    ban = ban_now(bans, IP, T0)
    bans.sync(T0, final=True)
    contents = ban_store.load(tmp_path, "worker-0", T0)
    assert contents.bans == [ban]
    assert sorted(chain.target for chain in contents.chains) == sorted(
        [IP, "192.0.2.7", "192.0.2.8", "192.0.2.9"]
    )


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
