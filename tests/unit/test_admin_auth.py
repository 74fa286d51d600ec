"""The admin token file (made private on first start, refused when others may read it, rotated without a
restart), the `[admin]` section (loopback unless allowed), and `shieldwall admin url/token`."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from shieldwall.admin.auth import TokenFile, TokenFileError, load_or_create, read_token, rotate
from shieldwall.cli.main import main
from shieldwall.config import ConfigError, load_config
from shieldwall.config.load import parse_config


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_token_is_made_once_private_in_a_private_directory(tmp_path: Path) -> None:
    path = tmp_path / "state" / "admin" / "token"
    token = load_or_create(path)
    assert len(token) >= 43
    assert (mode_of(path), mode_of(path.parent), mode_of(path.parent.parent)) == (0o600, 0o700, 0o700)
    assert load_or_create(path) == token == read_token(path)
    assert load_or_create(tmp_path / "other") != token


def test_a_token_file_others_can_read_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "token"
    load_or_create(path)
    path.chmod(0o644)
    with pytest.raises(
        TokenFileError, match=r"has mode 0644; it must be readable by its owner only: chmod 600"
    ):
        read_token(path)
    with pytest.raises(TokenFileError):
        TokenFile(path)


@pytest.mark.parametrize("content", [b"", b"short\n", b"two words that are long enough\n", b"x" * 5000])
def test_a_file_without_a_token_is_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "token"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(TokenFileError, match=r"holds no token|over 4096 bytes"):
        read_token(path)


def test_tokens_are_compared_whole(tmp_path: Path) -> None:
    tokens = TokenFile(tmp_path / "token")
    token = tokens.current()
    assert tokens.matches(token)
    for wrong in (
        None,
        "",
        token[:-1],
        token + "x",
        token.upper() if token != token.upper() else "x",
        "é" * 43,
    ):
        assert not tokens.matches(wrong)


def test_a_rotation_takes_effect_at_the_next_check_and_a_broken_file_keeps_the_last_token(
    tmp_path: Path,
) -> None:
    path = tmp_path / "token"
    tokens = TokenFile(path)
    old = tokens.current()
    new = rotate(path)
    assert new != old
    assert tokens.matches(new)
    assert not tokens.matches(old)
    path.write_text("no\n")  # broken: the last good token stays
    assert tokens.matches(new)
    path.unlink()
    assert tokens.matches(new)


# --- [admin] -------------------------------------------------------------------------------------


def test_admin_defaults() -> None:
    admin = load_config(None).admin
    assert (admin.enabled, admin.listen, admin.allow_remote, admin.metrics_need_token) == (
        True,
        "127.0.0.1:9180",
        False,
        False,
    )
    assert admin.token_path(Path("/var/lib/shieldwall")) == Path("/var/lib/shieldwall/admin/token")
    moved = parse_config({"admin": {"token_file": "/etc/shieldwall/admin-token"}}).admin
    assert moved.token_path(Path("/var/lib/shieldwall")) == Path("/etc/shieldwall/admin-token")


@pytest.mark.parametrize("listen", ["127.0.0.1:9180", "127.0.0.2:1", "[::1]:9180", "localhost:9180"])
def test_loopback_addresses_need_no_permission(listen: str) -> None:
    assert parse_config({"admin": {"listen": listen}}).admin.listen == listen


@pytest.mark.parametrize("listen", ["0.0.0.0:9180", ":9180", "[::]:9180", "192.0.2.1:9180"])
def test_other_addresses_need_allow_remote(listen: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"admin": {"listen": listen}})
    [problem] = caught.value.problems
    assert problem.startswith(
        "admin.listen: not a loopback address: other machines could reach the admin API"
    )
    assert problem.endswith("or set allow_remote = true if you mean it")
    assert parse_config({"admin": {"listen": listen, "allow_remote": True}}).admin.listen == listen


def test_a_bad_admin_address_says_what_to_write() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"admin": {"listen": "admin.example.org:9180"}})
    assert caught.value.problems[0].startswith("admin.listen: the host is not an IP address")


# --- shieldwall admin ----------------------------------------------------------------------------


def write_config(tmp_path: Path, extra: str = "") -> Path:
    path = tmp_path / "shieldwall.toml"
    path.write_text(f'[server]\nstate_dir = "{tmp_path / "state"}"\n{extra}')
    return path


def test_admin_url_prints_the_dashboard_address_with_the_token(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[admin]\nlisten = "[::]:9555"\nallow_remote = true\n')
    runner = CliRunner()
    missing = runner.invoke(main, ["admin", "url", "--config", str(config)])
    assert missing.exit_code == 2
    assert "no admin token in" in missing.stderr
    token = load_or_create(tmp_path / "state" / "admin" / "token")
    result = runner.invoke(main, ["admin", "url", "--config", str(config)])
    assert (result.exit_code, result.stdout) == (0, f"http://[::1]:9555/#token={token}\n")


def test_admin_token_prints_and_rotates_the_token(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    runner = CliRunner()
    made = runner.invoke(main, ["admin", "token", "--rotate", "--config", str(config)])
    assert made.exit_code == 0, made.output
    token = made.stdout.strip()
    assert read_token(tmp_path / "state" / "admin" / "token") == token
    shown = runner.invoke(main, ["admin", "token", "--config", str(config)])
    assert shown.stdout == f"{token}\n"
    rotated = runner.invoke(main, ["admin", "token", "--rotate", "--config", str(config)])
    assert rotated.stdout.strip() not in ("", token)
    assert "wrote a new token to" in rotated.stderr


def test_admin_url_warns_when_the_listener_is_off(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[admin]\nenabled = false\n")
    load_or_create(tmp_path / "state" / "admin" / "token")
    result = CliRunner().invoke(main, ["admin", "url", "--config", str(config)])
    assert result.stdout.startswith("http://127.0.0.1:9180/#token=")
    assert "nothing serves this address" in result.stderr
