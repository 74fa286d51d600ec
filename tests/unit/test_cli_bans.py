"""`shieldwall bans list/add/remove`, driven through click's CliRunner against a temporary state_dir
named by a temporary config file."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from shieldwall.cli.bans import bans, expiry_words, parse_duration
from shieldwall.config.policy_schema import Bans
from shieldwall.limiter.bans import Ban, BanTable
from shieldwall.state import ban_store


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "shieldwall.toml"
    path.write_text(f'[server]\nstate_dir = "{tmp_path / "state"}"\n\n[bans]\nallowlist = ["10.0.0.0/8"]\n')
    return path


def state(config: Path) -> Path:
    return config.parent / "state"


def invoke(config: Path | None, *args: str) -> Result:
    extra = ["--config", str(config)] if config is not None else []
    return CliRunner().invoke(bans, [*args, *extra], catch_exceptions=False)


def listed(config: Path) -> list[list[str]]:
    """The rows of `bans list` below its header, split on runs of two or more spaces."""
    result = invoke(config, "list")
    assert (result.exit_code, result.stderr) == (0, "")
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["TARGET", "SINCE", "EXPIRES", "SOURCE", "REASON"]
    return [[cell.strip() for cell in line.split("  ") if cell.strip()] for line in lines[1:]]


def test_list_with_no_bans(config: Path) -> None:
    result = invoke(config, "list")
    assert (result.exit_code, result.stdout) == (0, "no active bans\n")
    assert not state(config).exists()  # listing creates nothing


def test_add_then_list_newest_first(config: Path) -> None:
    result = invoke(config, "add", "203.0.113.7", "--for", "2d", "--reason", "credential stuffing")
    assert result.exit_code == 0
    assert result.stdout.startswith("banned 203.0.113.7, expires in 2 d (")
    result = invoke(config, "add", "198.51.100.9/24", "--for", "permanent")
    assert result.stdout == "banned 198.51.100.0/24 permanently (until removed)\n"
    rows = listed(config)
    assert [row[0] for row in rows] == ["198.51.100.0/24", "203.0.113.7"]
    assert rows[0][2:] == ["never (permanent)", "manual", "banned by the operator"]
    assert rows[1][2].startswith("in 2 d (") and rows[1][3:] == ["manual", "credential stuffing"]


def test_add_again_replaces_the_manual_ban(config: Path) -> None:
    invoke(config, "add", "203.0.113.7", "--for", "1h")
    invoke(config, "add", "203.0.113.7", "--for", "10m", "--reason", "second thoughts")
    manual = ban_store.load(state(config), "manual", time.time()).bans
    assert len(manual) == 1 and manual[0].reason == "second thoughts"
    assert manual[0].until is not None and manual[0].until - manual[0].since == 600


def test_workers_see_a_manual_ban(config: Path) -> None:
    invoke(config, "add", "2001:db8:1:2::/64", "--for", "1h")
    worker = BanTable(Bans())
    now = time.time()
    contents = ban_store.load_all(state(config), now)
    worker.merge(contents.bans, contents.lifts)
    assert worker.check("2001:db8:1:2::99", "2001:db8:1:2::/64", now) is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["add", "10.1.0.0/16"], "a ban covers one address or one client prefix"),
        (["add", "example.org"], 'not an IP address or CIDR prefix (got "example.org")'),
        (["add", "203.0.113.7", "--for", "forever"], 'not a duration (got "forever")'),
        (["add", "203.0.113.7", "--for", "0m"], "a ban must last longer than 0 s"),
        (["add", "203.0.113.7", "--reason", "two\nlines"], "one line of at most 200 printable characters"),
        (["remove", "203.0.113.0/28"], "a ban covers one address or one client prefix"),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(config: Path, args: list[str], message: str) -> None:
    result = invoke(config, *args)
    assert result.exit_code == 2
    assert message in " ".join(result.stderr.split())
    assert not state(config).exists()


def test_an_allowlisted_address_is_refused_with_a_reason(config: Path) -> None:
    result = invoke(config, "add", "10.1.2.3")
    assert result.exit_code == 2
    assert result.stderr == (
        "shieldwall: 10.1.2.3 is in bans.allowlist, which wins over every ban: it would never be refused. "
        "Take it out of the allowlist first if you mean to ban it.\n"
    )
    assert not state(config).exists()


def test_a_prefix_overlapping_the_allowlist_is_banned_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text(f'[server]\nstate_dir = "{tmp_path / "s"}"\n[bans]\nallowlist = ["192.0.2.10"]\n')
    result = invoke(path, "add", "192.0.2.0/24")
    assert result.exit_code == 0
    assert result.stdout.endswith("note: the allowlisted addresses in 192.0.2.0/24 are still let in\n")


def test_remove_a_manual_ban(config: Path) -> None:
    invoke(config, "add", "203.0.113.7")
    result = invoke(config, "remove", "203.0.113.7")
    assert (result.exit_code, result.stdout) == (0, "203.0.113.7: removed its manual ban\n")
    assert invoke(config, "list").stdout == "no active bans\n"


def test_remove_lifts_a_ban_a_worker_made(config: Path) -> None:
    """The worker's file is not the CLI's to write: a lift goes into manual.json, every worker drops
    the ban at its next merge, and the worker's own table forgets it too (so its file loses it)."""
    now = time.time()
    worker = BanTable(Bans(offences=1))
    ban = worker.offence("192.0.2.1", "192.0.2.0/24", now - 5)
    assert ban is not None
    ban_store.save(state(config), "worker-0", worker.own(now))
    assert listed(config)[0][0] == "192.0.2.1"

    result = invoke(config, "remove", "192.0.2.1")
    assert (result.exit_code, result.stdout) == (0, "192.0.2.1: lifted 1 ban made by workers\n")
    contents = ban_store.load_all(state(config), time.time())
    assert contents.bans == []
    assert [(lift.target, lift.until) for lift in contents.lifts] == [("192.0.2.1", ban.until)]
    worker.merge(contents.bans, contents.lifts)
    assert worker.check("192.0.2.1", "192.0.2.0/24", time.time()) is None
    assert worker.own(time.time()) == []
    assert invoke(config, "list").stdout == "no active bans\n"


def test_remove_what_is_not_banned_says_so(config: Path) -> None:
    invoke(config, "add", "198.51.100.0/24")
    result = invoke(config, "remove", "198.51.100.7")
    assert result.exit_code == 0
    assert result.stdout == (
        "198.51.100.7 was not banned\n"
        "note: its prefix 198.51.100.0/24 is banned too; remove that as well to let it in\n"
    )


def test_a_bad_config_exits_2_with_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[bans]\noffences = 0\nallowlist = ["x"]\n')
    result = invoke(path, "list")
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"{path}: 2 problems",
        "  bans.offences: must be greater than 0 (got 0)",
        '  bans.allowlist[0]: not a CIDR (got "x"); write it like 10.0.0.0/8, 192.0.2.7 or 2001:db8::/32',
    ]


def test_an_unusable_state_dir_exits_2(tmp_path: Path) -> None:
    (tmp_path / "state").write_text("not a directory")
    path = tmp_path / "c.toml"
    path.write_text(f'[server]\nstate_dir = "{tmp_path / "state"}"\n')
    result = invoke(path, "add", "203.0.113.7")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"shieldwall: server.state_dir: {tmp_path / 'state'} exists and is not")


def test_list_warns_about_a_corrupt_file_and_shows_the_rest(config: Path) -> None:
    invoke(config, "add", "203.0.113.7")
    (state(config) / "bans" / "worker-1.json").write_text("garbage")
    result = invoke(config, "list")
    assert result.exit_code == 0
    assert result.stderr.startswith(f"warning: {state(config)}/bans/worker-1.json: not valid JSON (")
    assert "203.0.113.7" in result.stdout


def test_a_corrupt_manual_file_is_never_overwritten(config: Path) -> None:
    ban_store.prepare(state(config))
    manual = state(config) / "bans" / "manual.json"
    manual.write_text("{half a file")
    result = invoke(config, "add", "203.0.113.7")
    assert result.exit_code == 2
    assert "fix or move the file before changing manual bans" in result.stderr
    assert manual.read_text() == "{half a file"


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(bans, ["--help"])
    assert result.exit_code == 0
    assert all(command in result.stdout for command in ("list", "add", "remove"))


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("90s", 90.0),
        ("10m", 600.0),
        ("1h", 3600.0),
        ("2d", 172800.0),
        ("1d12h", 129600.0),
        ("permanent", None),
    ],
)
def test_parse_duration(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds


def test_expiry_words() -> None:
    now = time.mktime((2024, 5, 1, 14, 0, 0, 0, 0, -1))
    assert expiry_words(None, now) == "never (permanent)"
    assert expiry_words(now + 45, now) == "in 45 s (14:00)"
    assert expiry_words(now + 9 * 60, now) == "in 9 min (14:09)"
    assert expiry_words(now + 3 * 3600 + 5 * 60, now) == "in 3 h 5 min (17:05)"
    assert expiry_words(now + 2 * 86400 + 3 * 3600, now) == "in 2 d 3 h (2024-05-03 17:00)"


def test_an_auto_ban_shows_its_rung(config: Path) -> None:
    now = time.time()
    ban_store.save(state(config), "worker-2", [Ban("192.0.2.1", now + 600, "30 refusals", "auto", 1, now)])
    assert listed(config)[0][3] == "auto, ban 2"
