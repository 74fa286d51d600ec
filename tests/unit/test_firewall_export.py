"""firewall/export.py: each format of `shieldwall export bans`, byte for byte against golden files in
tests/fixtures/firewall/, and parsed back line by line. After a deliberate change, rewrite them and
review the diff:
    SHIELDWALL_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/unit/test_firewall_export.py
The nft script is also loaded into a real kernel by tests/integration/test_firewall_netns.py."""

from __future__ import annotations

import ipaddress
import os
import re
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from shieldwall.cli.export import export_group
from shieldwall.firewall.entries import BanSet, ban_set
from shieldwall.firewall.export import FORMATS, IPSET_MAX_TIMEOUT, export
from shieldwall.limiter.bans import Ban
from shieldwall.state import ban_store

GOLDEN = Path(__file__).parent.parent / "fixtures" / "firewall"
UPDATE = os.environ.get("SHIELDWALL_UPDATE_GOLDEN") == "1"
NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z
DESTINATIONS = (ipaddress.ip_network("192.0.2.0/24"), ipaddress.ip_network("2001:db8:ff::/48"))
FILES = {"nft": "bans.nft", "ipset": "bans.ipset", "cidr-list": "bans.cidr", "flowspec": "bans.flowspec"}


def sample() -> BanSet:
    bans = [
        Ban("203.0.113.7", NOW + 599.5, "30 refusals within 60 s", "auto", 0, NOW - 1),
        Ban("198.51.100.0/24", None, "credential stuffing", "manual", 0, NOW - 100),
        Ban("198.51.100.9", NOW + 60, "inside the banned /24: a set of its own", "auto", 0, NOW - 5),
        Ban("2001:db8:1:2::/64", NOW + 3600, "scraper", "manual", 0, NOW - 50),
        Ban("2001:db8::7", NOW + 90 * 86400, "a long one", "manual", 0, NOW - 50),
    ]
    return ban_set(bans, NOW)


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        GOLDEN.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} changed; see the module docstring"


@pytest.mark.parametrize("fmt", FORMATS)
def test_golden(fmt: str) -> None:
    destinations = DESTINATIONS if fmt == "flowspec" else ()
    check_golden(FILES[fmt], export(fmt, sample(), NOW, destinations=destinations))


def test_nft_script_replaces_the_table_and_holds_every_element_with_its_timeout() -> None:
    text = export("nft", sample(), NOW, table="edge")
    lines = [line.strip() for line in text.splitlines() if not line.startswith("#")]
    assert lines[:3] == ["table inet edge", "delete table inet edge", "table inet edge {"]
    elements = [line.rstrip(",") for line in lines if re.match(r"[0-9a-f.:/]+( timeout \d+s)?,$", line)]
    assert elements == [
        "198.51.100.9 timeout 60s",
        "203.0.113.7 timeout 600s",
        "198.51.100.0/24",
        "2001:db8::7 timeout 7776000s",
        "2001:db8:1:2::/64 timeout 3600s",
    ]
    sets = re.findall(r"set (\S+) \{\s*type (\S+)\s*flags ([a-z, ]+)\n", text)
    assert sets == [
        ("banned4", "ipv4_addr", "timeout"),
        ("banned4_nets", "ipv4_addr", "interval, timeout"),
        ("banned6", "ipv6_addr", "timeout"),
        ("banned6_nets", "ipv6_addr", "interval, timeout"),
    ]
    assert "type filter hook prerouting priority -300; policy accept;" in lines
    assert text.count("{") == text.count("}")


def test_ipset_restore_lines_parse_and_long_timeouts_are_capped() -> None:
    lines = export("ipset", sample(), NOW, table="edge").splitlines()
    assert lines[0] == "create edge-banned4 hash:net family inet timeout 0 maxelem 1048576 -exist"
    assert lines[1] == "flush edge-banned4"
    adds = {}
    for line in lines:
        verb, name, *rest = line.split()
        assert verb in ("create", "flush", "add") and name in ("edge-banned4", "edge-banned6")
        if verb == "add":
            network = ipaddress.ip_network(rest[0])
            assert (network.version == 4) == name.endswith("4")
            adds[rest[0]] = int(rest[2]) if rest[1:] else None
    assert adds == {
        "198.51.100.0/24": None,
        "198.51.100.9/32": 60,
        "203.0.113.7/32": 600,
        "2001:db8::7/128": IPSET_MAX_TIMEOUT,
        "2001:db8:1:2::/64": 3600,
    }


def test_cidr_list_is_one_network_a_line() -> None:
    text = export("cidr-list", sample(), NOW)
    networks = [ipaddress.ip_network(line) for line in text.splitlines()]
    assert [str(n) for n in networks] == [
        "198.51.100.0/24",
        "198.51.100.9/32",
        "203.0.113.7/32",
        "2001:db8::7/128",
        "2001:db8:1:2::/64",
    ]
    assert export("cidr-list", BanSet(), NOW) == ""


def test_flowspec_routes_match_the_source_and_each_destination_of_its_family() -> None:
    text = export("flowspec", sample(), NOW, destinations=DESTINATIONS[:1])
    routes = re.findall(r"route (\S+) \{\s*match \{([^}]*)\}\s*then \{\s*discard;\s*\}", text)
    matches = {name: [item.strip() for item in body.strip().split("\n")] for name, body in routes}
    assert matches == {
        "shieldwall-198-51-100-0-24-to-192-0-2-0-24": [
            "source 198.51.100.0/24;",
            "destination 192.0.2.0/24;",
        ],
        "shieldwall-198-51-100-9-32-to-192-0-2-0-24": [
            "source 198.51.100.9/32;",
            "destination 192.0.2.0/24;",
        ],
        "shieldwall-203-0-113-7-32-to-192-0-2-0-24": ["source 203.0.113.7/32;", "destination 192.0.2.0/24;"],
        "shieldwall-2001-db8-7-128": ["source 2001:db8::7/128/0;"],  # no IPv6 destination given
        "shieldwall-2001-db8-1-2-64": ["source 2001:db8:1:2::/64/0;"],
    }
    assert text.count("{") == text.count("}")
    assert "flow {" not in export("flowspec", BanSet(), NOW)  # nothing to announce: comments only


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "shieldwall.toml"
    path.write_text(f'[server]\nstate_dir = "{tmp_path / "state"}"\n\n[bans]\nallowlist = ["192.0.2.0/24"]\n')
    return path


def test_cli_reads_the_store_and_leaves_allowlisted_bans_out(config: Path, tmp_path: Path) -> None:
    now = time.time()
    bans = [
        Ban("203.0.113.7", now + 600, "t", "manual", 0, now),
        Ban("192.0.2.0/24", now + 600, "t", "manual", 0, now),
    ]
    ban_store.save(tmp_path / "state", "manual", bans)
    runner = CliRunner()
    result = runner.invoke(export_group, ["bans", "--format", "cidr-list", "--config", str(config)])
    assert (result.exit_code, result.stdout) == (0, "203.0.113.7/32\n")
    assert "left out 1 ban(s) overlapping bans.allowlist" in result.stderr
    out = tmp_path / "bans.nft"
    result = runner.invoke(export_group, ["bans", "--format", "nft", "-o", str(out), "--config", str(config)])
    assert result.exit_code == 0 and "wrote 1 entries" in result.stderr
    assert "203.0.113.7 timeout" in out.read_text() and oct(out.stat().st_mode & 0o777) == "0o600"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "pf"], "Invalid value for '--format'"),
        (["--format", "flowspec", "--destination", "nonsense"], "not a CIDR"),
        (["--format", "nft", "--destination", "192.0.2.0/24"], "--destination is for --format flowspec only"),
    ],
)
def test_cli_bad_input_exits_2(config: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(export_group, ["bans", *args, "--config", str(config)])
    assert result.exit_code == 2 and message in result.stderr
