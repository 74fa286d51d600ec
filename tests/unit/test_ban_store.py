"""The ban store: files round-trip (chains too, and files from before chains), writes are atomic, bad
files are reported and skipped, expired entries are left out, the directory is private, and polling
notices every change."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from shieldwall.limiter.bans import Ban, Chain, Lift
from shieldwall.state import ban_store
from shieldwall.state.ban_store import StateDirError

NOW = 1_700_000_000.0
AUTO = Ban("203.0.113.7", NOW + 600, "30 refusals within 60 s", "auto", 1, NOW - 10)
MANUAL = Ban("198.51.100.0/24", None, "scraper farm", "manual", 0, NOW - 3600)
V6 = Ban("2001:db8:1:2::/64", NOW + 60, "ipv6 flood", "manual", 0, NOW)
CHAIN = Chain("192.0.2.1", 2, NOW + 3600)  # its last ban has ended; its next one will be at level 2


def files(state_dir: Path) -> list[str]:
    return sorted(path.name for path in (state_dir / "bans").iterdir())


def test_round_trip(tmp_path: Path) -> None:
    ban_store.save(tmp_path, "worker-0", [AUTO])
    ban_store.save(tmp_path, "manual", [MANUAL, V6])
    contents = ban_store.load_all(tmp_path, NOW)
    assert sorted(contents.bans, key=lambda ban: ban.target) == sorted(
        [AUTO, MANUAL, V6], key=lambda ban: ban.target
    )
    assert contents.problems == [] and contents.lifts == []
    assert ban_store.load(tmp_path, "worker-0", NOW).bans == [AUTO]
    assert ban_store.load(tmp_path, "worker-9", NOW).bans == []  # no file yet: nothing


def test_chains_round_trip_for_their_writer_only(tmp_path: Path) -> None:
    """Chains are for the worker that wrote them, after a restart: load_all (every worker's reload, and
    `shieldwall bans list`) sees only bans, so a chain never counts as a ban anywhere."""
    ban_store.save(tmp_path, "worker-0", [AUTO], chains=[CHAIN, Chain(AUTO.target, 2, NOW + 90000)])
    contents = ban_store.load(tmp_path, "worker-0", NOW)
    assert contents.bans == [AUTO] and contents.problems == []
    assert contents.chains == [CHAIN, Chain(AUTO.target, 2, NOW + 90000)]
    everything = ban_store.load_all(tmp_path, NOW)
    assert everything.bans == [AUTO] and everything.chains == [] and everything.problems == []
    ban_store.save(tmp_path, "worker-1", [], chains=[CHAIN])
    assert ban_store.load_all(tmp_path, NOW).bans == [AUTO]


def test_chains_that_ran_out_are_skipped_on_load(tmp_path: Path) -> None:
    ban_store.save(tmp_path, "worker-0", [], chains=[CHAIN])
    assert ban_store.load(tmp_path, "worker-0", NOW + 3599).chains == [CHAIN]
    assert ban_store.load(tmp_path, "worker-0", NOW + 3600).chains == []


def test_a_file_from_before_chains_loads(tmp_path: Path) -> None:
    """Files written before chains existed have no "chains" key: they load, with no chains and no
    complaint, and a file without chains is still written without the key."""
    ban_store.prepare(tmp_path)
    old = {
        "format": "shieldwall-bans/1",
        "bans": [
            {
                "target": AUTO.target,
                "until": AUTO.until,
                "reason": AUTO.reason,
                "source": "auto",
                "level": AUTO.level,
                "since": AUTO.since,
            }
        ],
        "lifts": [],
    }
    path = tmp_path / "bans" / "worker-0.json"
    path.write_text(json.dumps(old))
    contents = ban_store.load(tmp_path, "worker-0", NOW)
    assert (contents.bans, contents.chains, contents.problems) == ([AUTO], [], [])
    ban_store.save(tmp_path, "worker-0", [AUTO])
    assert json.loads(path.read_text()) == old


def test_bad_chains_are_skipped_and_the_rest_kept(tmp_path: Path) -> None:
    ban_store.save(tmp_path, "worker-0", [AUTO], chains=[CHAIN])
    path = tmp_path / "bans" / "worker-0.json"
    document = json.loads(path.read_text())
    document["chains"] += [
        {"target": "192.0.2.2", "length": 0, "remember_until": NOW + 60},
        {"target": "192.0.2.3", "length": 1},
        {"target": "10.0.0.0/8", "length": 1, "remember_until": NOW + 60},
    ]
    path.write_text(json.dumps(document))
    contents = ban_store.load(tmp_path, "worker-0", NOW)
    assert contents.bans == [AUTO] and contents.chains == [CHAIN]
    assert contents.problems == [
        f"{path}: skipped chains[1]: length must be a whole number >= 1 (and 2 more)"
    ]
    path.write_text(json.dumps({**document, "chains": {"not": "a list"}}))
    assert ban_store.load(tmp_path, "worker-0", NOW).problems == [f"{path}: skipped chains: not a list"]


def test_lifts_round_trip_and_hide_the_bans_they_cover(tmp_path: Path) -> None:
    later = Ban("203.0.113.7", NOW + 900, "again", "auto", 0, NOW + 5)
    ban_store.save(tmp_path, "worker-0", [AUTO])
    ban_store.save(tmp_path, "worker-1", [later])
    lift = Lift("203.0.113.7", NOW, AUTO.until)
    ban_store.save(tmp_path, "manual", [], [lift])
    contents = ban_store.load_all(tmp_path, NOW)
    assert contents.lifts == [lift]
    assert contents.bans == [later]  # began after the lift


def test_expired_bans_and_lifts_are_skipped_on_load(tmp_path: Path) -> None:
    ban_store.save(tmp_path, "manual", [AUTO, MANUAL], [Lift("192.0.2.1", NOW - 100, NOW - 1)])
    contents = ban_store.load_all(tmp_path, NOW + 600)  # AUTO ends exactly then
    assert contents.bans == [MANUAL] and contents.lifts == []


def test_a_corrupt_file_is_reported_and_skipped(tmp_path: Path) -> None:
    ban_store.save(tmp_path, "worker-0", [AUTO])
    (tmp_path / "bans" / "worker-1.json").write_text('{"format": "shieldwall-bans/1", "bans": [')
    (tmp_path / "bans" / "worker-2.json").write_bytes(b"\xff\xfe")
    (tmp_path / "bans" / "worker-3.json").write_text('{"bans": []}')
    contents = ban_store.load_all(tmp_path, NOW)
    assert contents.bans == [AUTO]
    assert len(contents.problems) == 3
    assert contents.problems[0].startswith(f"{tmp_path}/bans/worker-1.json: not valid JSON (")
    assert contents.problems[0].endswith("); skipped")
    assert "worker-2.json: not valid JSON" in contents.problems[1]
    assert contents.problems[2] == (
        f"{tmp_path}/bans/worker-3.json: not a shieldwall ban file "
        "(no \"format\": 'shieldwall-bans/1'); skipped"
    )


def test_bad_entries_are_skipped_and_the_rest_kept(tmp_path: Path) -> None:
    ban_store.save(tmp_path, "manual", [MANUAL, AUTO])
    path = tmp_path / "bans" / "manual.json"
    document = json.loads(path.read_text())
    document["bans"][1]["target"] = "10.0.0.0/8"
    document["bans"].append({"target": "192.0.2.1", "until": None, "reason": "x", "source": "auto"})
    document["bans"].append("not an object")
    path.write_text(json.dumps(document))
    contents = ban_store.load_all(tmp_path, NOW)
    assert contents.bans == [MANUAL]
    assert contents.problems == [
        f"{path}: skipped bans[1]: a ban covers one address or one client prefix (an IPv4 /24 or an "
        "IPv6 /64), which is what each connection is checked against; ban wider ranges in the firewall "
        "(and 2 more)"
    ]


def test_a_crash_before_the_replace_leaves_the_old_file(tmp_path: Path) -> None:
    """A writer killed between writing its temporary file and renaming it leaves the temporary file
    behind: readers never look at it, and see the old file whole."""
    ban_store.save(tmp_path, "worker-0", [AUTO])
    (tmp_path / "bans" / ".worker-0.json.k2j4h1.tmp").write_text('{"format": "shieldwall-bans/1", "ba')
    assert ban_store.load_all(tmp_path, NOW).bans == [AUTO]
    assert ban_store.load_all(tmp_path, NOW).problems == []


def test_a_failed_replace_keeps_the_old_file_and_cleans_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ban_store.save(tmp_path, "worker-0", [AUTO])

    def disk_full(source: str, target: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(StateDirError, match=r"cannot write .*worker-0\.json: No space left on device"):
        ban_store.save(tmp_path, "worker-0", [AUTO, MANUAL])
    monkeypatch.undo()
    assert ban_store.load(tmp_path, "worker-0", NOW).bans == [AUTO]
    assert files(tmp_path) == ["worker-0.json"]  # no temporary file left behind


def test_the_state_directory_is_created_private(tmp_path: Path) -> None:
    state_dir = tmp_path / "var" / "shieldwall"
    ban_store.save(state_dir, "manual", [MANUAL])
    for directory in (state_dir, state_dir / "bans"):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE((state_dir / "bans" / "manual.json").stat().st_mode) == 0o600


def test_an_unusable_state_directory_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the directory should be")
    with pytest.raises(StateDirError) as caught:
        ban_store.prepare(blocker)
    assert str(caught.value) == (
        f"server.state_dir: {blocker} exists and is not a directory; create it for the user shieldwall "
        "runs as (e.g. install -d -m 700 -o shieldwall /var/lib/shieldwall) or set server.state_dir elsewhere"
    )
    with pytest.raises(StateDirError, match="cannot create"):
        ban_store.prepare(blocker / "below")


def test_reading_a_missing_state_directory_finds_nothing_and_creates_nothing(tmp_path: Path) -> None:
    contents = ban_store.load_all(tmp_path / "nowhere", NOW)
    assert (contents.bans, contents.lifts, contents.problems) == ([], [], [])
    assert not (tmp_path / "nowhere").exists()


def test_writer_names_are_checked(tmp_path: Path) -> None:
    for bad in ("../manual", "worker-x", "Manual"):
        with pytest.raises(ValueError, match="writer must be"):
            ban_store.save(tmp_path, bad, [])
    assert ban_store.worker_writer(3) == "worker-3"


# --- polling -------------------------------------------------------------------------------------


def settle(state_dir: Path, pattern: str = "*.json") -> None:
    """Date ban files a minute back, as if written long before the poll (no sleeping)."""
    for path in (state_dir / "bans").glob(pattern):
        old = path.stat().st_mtime_ns - 60 * 10**9
        os.utime(path, ns=(old, old))


def test_changed_since_notices_writes_and_nothing_else(tmp_path: Path) -> None:
    first = ban_store.changed_since(tmp_path, None)
    assert first is not None and first.files == ()  # no directory yet: an empty stamp
    ban_store.save(tmp_path, "worker-0", [AUTO])
    settle(tmp_path)
    stamp = ban_store.changed_since(tmp_path, first)
    assert stamp is not None
    assert ban_store.changed_since(tmp_path, stamp) is None
    ban_store.save(tmp_path, "manual", [MANUAL])
    settle(tmp_path)
    stamp2 = ban_store.changed_since(tmp_path, stamp)
    assert stamp2 is not None and ban_store.changed_since(tmp_path, stamp2) is None
    (tmp_path / "bans" / "worker-0.json").unlink()
    assert ban_store.changed_since(tmp_path, stamp2) is not None


def test_a_rewrite_with_the_same_size_and_mtime_is_noticed(tmp_path: Path) -> None:
    ban_store.save(tmp_path, "worker-0", [AUTO])
    settle(tmp_path)
    path = tmp_path / "bans" / "worker-0.json"
    before = path.stat()
    stamp = ban_store.changed_since(tmp_path, None)
    assert stamp is not None and ban_store.changed_since(tmp_path, stamp) is None
    ban_store.save(tmp_path, "worker-0", [Ban(AUTO.target, AUTO.until, AUTO.reason, "auto", 2, AUTO.since)])
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert path.stat().st_size == before.st_size
    assert ban_store.changed_since(tmp_path, stamp) is not None  # a new file (inode) all the same


def test_a_stamp_taken_right_after_a_write_does_not_vouch_for_it(tmp_path: Path) -> None:
    """Timestamps are coarse: a second write within the same tick could keep the mtime (and, with a
    recycled inode and the same size, look identical). So a fresh stamp is not trusted once."""
    ban_store.save(tmp_path, "worker-0", [AUTO])
    stamp = ban_store.changed_since(tmp_path, None)
    assert stamp is not None and not stamp.settled
    again = ban_store.changed_since(tmp_path, stamp)
    assert again is not None  # reload once more
    settle(tmp_path)
    settled = ban_store.changed_since(tmp_path, again)
    assert settled is not None and settled.settled
    assert ban_store.changed_since(tmp_path, settled) is None


def test_load_all_with_a_cache_parses_only_changed_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ban_store.save(tmp_path, "worker-0", [AUTO])
    ban_store.save(tmp_path, "worker-1", [V6])
    settle(tmp_path)
    cache: ban_store.FileCache = {}
    assert len(ban_store.load_all(tmp_path, NOW, cache).bans) == 2
    parsed: list[str] = []
    real_parse = ban_store._parse

    def counting_parse(path: Path, *, chains: bool = False) -> ban_store.Contents:
        parsed.append(path.name)
        return real_parse(path, chains=chains)

    monkeypatch.setattr(ban_store, "_parse", counting_parse)
    ban_store.save(tmp_path, "worker-1", [])
    settle(tmp_path, "worker-1.json")
    assert ban_store.load_all(tmp_path, NOW, cache).bans == [AUTO]
    assert parsed == ["worker-1.json"]
    (tmp_path / "bans" / "worker-1.json").unlink()
    ban_store.load_all(tmp_path, NOW, cache)
    assert set(cache) == {"worker-0.json"}


def test_a_racy_file_is_not_cached(tmp_path: Path) -> None:
    ban_store.save(tmp_path, "worker-0", [AUTO])
    cache: ban_store.FileCache = {}
    ban_store.load_all(tmp_path, NOW, cache)
    assert cache == {}  # written just now: its mtime may yet hide a rewrite


# --- editing manual.json -------------------------------------------------------------------------


def test_editing_manual_saves_changes_only(tmp_path: Path) -> None:
    with ban_store.editing_manual(tmp_path, NOW) as manual:
        manual.bans.append(MANUAL)
    assert ban_store.load(tmp_path, "manual", NOW).bans == [MANUAL]
    settle(tmp_path)
    stamp = ban_store.changed_since(tmp_path, None)
    with ban_store.editing_manual(tmp_path, NOW) as manual:
        assert manual.bans == [MANUAL]
    assert ban_store.changed_since(tmp_path, stamp) is None  # untouched: workers need not reload


def test_editing_manual_refuses_to_overwrite_what_it_cannot_read(tmp_path: Path) -> None:
    ban_store.prepare(tmp_path)
    (tmp_path / "bans" / "manual.json").write_text("{not json")
    refused = pytest.raises(StateDirError, match="fix or move the file before changing manual bans")
    with refused, ban_store.editing_manual(tmp_path, NOW):
        pass
    assert (tmp_path / "bans" / "manual.json").read_text() == "{not json"


def test_a_worker_can_skip_its_own_file(tmp_path: Path) -> None:
    ban_store.save(tmp_path, "worker-0", [AUTO])
    ban_store.save(tmp_path, "worker-1", [V6])
    assert ban_store.load_all(tmp_path, NOW, skip="worker-0").bans == [V6]
