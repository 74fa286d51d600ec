"""Rules and bans through the real proxy: limits and blocks, log-only, automatic bans at accept time,
manual bans from the CLI reaching a running worker, bans surviving a restart, and the allowlist."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import procs
from helpers.rawhttp import Connection, build_request

pytestmark = pytest.mark.integration

RULES = [
    {
        "name": "donate-limit",
        "action": "limit",
        "match": {"methods": ["POST"], "path": "/echo"},
        "limit": {"rate": 0.1, "burst": 2, "per": "ip"},
    },
    {"name": "no-wp", "action": "block", "match": {"path_prefix": "/wp-"}},
    {
        "name": "try-block-curl",
        "action": "block",
        "log_only": True,
        "match": {"headers": {"user-agent": "curl"}},
    },
]


def connect_from(source: str, shield: procs.ServerProcess) -> Connection:
    sock = socket.socket()
    sock.settimeout(5)
    sock.bind((source, 0))
    sock.connect(shield.address)
    return Connection.over(sock)


def is_refused_at_accept(source: str, shield: procs.ServerProcess) -> bool:
    conn = connect_from(source, shield)
    with conn:
        try:
            conn.send(build_request("GET", "/hello"))
        except OSError:
            return True
        return conn.peer_closed(within=3)


def test_limit_block_and_log_only_rules(start_shield) -> None:
    shield = start_shield({"rules": RULES, "bans": {"enabled": False}})
    statuses = []
    for _ in range(3):  # a refused request with a body closes its connection: one connection each
        with connect_from("127.0.0.10", shield) as conn:
            statuses.append(conn.request("POST", "/echo", body=b"x").status)
    assert statuses == [200, 200, 429]
    with connect_from("127.0.0.10", shield) as conn:
        assert conn.request("GET", "/hello").status == 200, "the limit is on POST /echo only"
        blocked = conn.request("GET", "/wp-login.php")
        assert blocked.status == 403 and (blocked.header("X-Shieldwall-Ref") or "").startswith("SW-")
        assert conn.request("GET", "/hello", headers=[("User-Agent", "curl/8")]).status == 200, "log-only"


def test_repeat_offender_is_banned_at_accept_and_the_ban_survives_a_restart(
    start_shield, tmp_path: Path
) -> None:
    config = {
        "rules": [{"name": "no-wp", "action": "block", "match": {"path_prefix": "/wp-"}}],
        "bans": {"offences": 3, "offence_window": 60.0, "durations": [60.0]},
        "server": {"state_dir": str(tmp_path / "state")},
    }
    shield = start_shield(config)
    with connect_from("127.0.0.20", shield) as conn:
        assert [conn.request("GET", "/wp-admin").status for _ in range(3)] == [403, 403, 403]
        assert conn.peer_closed(within=3), "the refusal that earned the ban closes the connection"
    assert is_refused_at_accept("127.0.0.20", shield)
    with connect_from("127.0.0.21", shield) as other:  # an automatic ban is on the address only
        assert other.request("GET", "/hello").status == 200
    procs.stop(shield)
    start_shield.started.remove(shield)  # stopped on purpose, not died
    restarted = start_shield(config)
    assert is_refused_at_accept("127.0.0.20", restarted), "the ban was kept across the restart"


def bans_cli(*args: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "shieldwall", "bans", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_manual_ban_and_removal_reach_a_running_worker_within_a_second(start_shield, tmp_path: Path) -> None:
    state = tmp_path / "state"
    shield = start_shield({"server": {"state_dir": str(state)}, "bans": {"allowlist": ["127.0.0.40/32"]}})
    config = tmp_path / "cli.toml"
    config.write_text(f'[server]\nstate_dir = "{state}"\n\n[bans]\nallowlist = ["127.0.0.40/32"]\n')
    added = bans_cli("add", "127.0.0.30", "--for", "10m", "--reason", "test", config=config)
    assert added.returncode == 0, added.stderr
    time.sleep(1.0)  # the worker polls the store twice a second
    assert is_refused_at_accept("127.0.0.30", shield)
    refused = bans_cli("add", "127.0.0.40", config=config)
    assert refused.returncode == 2 and "allowlist" in refused.stderr
    removed = bans_cli("remove", "127.0.0.30", config=config)
    assert removed.returncode == 0, removed.stderr
    time.sleep(1.0)
    with connect_from("127.0.0.30", shield) as conn:
        assert conn.request("GET", "/hello").status == 200
