"""`shieldwall drill`'s command line: every figure bounded, every address held to loopback, the replay
log checked, all before anything starts (the drill itself is replaced by a fake that must not run)."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from shieldwall.cli.drill import plan_from_options
from shieldwall.cli.main import main
from shieldwall.drill.run import NGINX, NO_SHIELD, SHIELDWALL


@pytest.fixture
def no_drill(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Replace the drill runner: a test that gets past validation records the plan instead of flooding."""
    calls: list[object] = []
    module = types.ModuleType("shieldwall.drill.run")
    real = sys.modules.get("shieldwall.drill.run")
    module.__dict__.update(vars(real) if real else {})
    module.__dict__["run_drill"] = lambda plan, workdir, view: calls.append(plan) or []
    monkeypatch.setitem(sys.modules, "shieldwall.drill.run", module)
    return calls


def drill(*args: str) -> Result:
    return CliRunner().invoke(main, ["drill", *args], catch_exceptions=False)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--attach", "http://10.1.2.3:8080"], "10.1.2.3 is not on this machine's loopback"),
        (["--attach", "http://192.168.1.1"], "drills only ever send to 127.0.0.0/8 or ::1"),
        (["--attach", "http://example.org:80"], "resolve no other name"),
        (["--attach", "http://[2001:db8::1]:80"], "not on this machine's loopback"),
        (["--attach", "http://127.0.0.1:9", "--attach-site", "http://8.8.8.8:80"], "8.8.8.8 is not on"),
        (["--attach", "127.0.0.1:9"], "write it as http://127.0.0.1:PORT"),
    ],
)
def test_a_target_off_loopback_is_refused_before_anything_starts(no_drill, args, message) -> None:
    result = drill(*args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert no_drill == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "0"], "--rate must be within (0, 5000]"),
        (["--rate", "20000"], "--rate must be within (0, 5000]"),
        (["--sources", "0"], "--sources must be within 1..30000"),
        (["--sources", "40000"], "--sources must be within 1..30000"),
        (["--seconds", "601"], "--seconds must be within (0, 600]"),
        (["--before", "0"], "--before and --after must be within (0, 600]"),
        (["--after", "1000"], "--before and --after must be within (0, 600]"),
        (["--visitors", "5000"], "--visitors must be within 0..2000"),
        (["--nojs-share", "1.5"], "--nojs-share must be within 0..1"),
        (["--site-workers", "0"], "--site-workers"),
        (["--speedup", "0"], "--speedup"),
        (["--compare", "haproxy"], "haproxy: compare with none and/or nginx"),
        (["--scenario", "nuke"], "'nuke' is not one of"),
        (["--state-dir", "/tmp"], "add --attach URL"),
        (["--attach", "http://127.0.0.1:9", "--compare", "none"], "--compare needs a site it starts"),
    ],
)
def test_figures_out_of_bounds_are_refused(no_drill, args, message) -> None:
    result = drill(*args)
    assert result.exit_code == 2, result.stdout
    assert message in result.stderr
    assert no_drill == []


def test_a_valid_command_line_becomes_the_plan_it_says(no_drill, tmp_path: Path) -> None:
    result = drill(
        "--scenario", "post-flood", "--rate", "250", "--sources", "300", "--seconds", "12",
        "--before", "5", "--after", "7", "--visitors", "9", "--compare", "none", "--workdir", str(tmp_path),
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    (plan,) = no_drill
    assert (plan.scenario, plan.attack.rate, plan.attack.sources, plan.attack.seconds) == (
        "post-flood",
        250,
        300,
        12,
    )
    assert (plan.before, plan.after, plan.visitors) == (5, 7, 9)
    assert plan.setups == (SHIELDWALL, NO_SHIELD)


def test_compare_lists_each_baseline_once_after_shieldwall(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shieldwall.drill.run.nginx_available", lambda: True)
    plan = plan_from_options(compare="nginx, none,nginx")
    assert plan.setups == (SHIELDWALL, NGINX, NO_SHIELD)


def test_nginx_is_refused_when_it_is_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shieldwall.drill.run.nginx_available", lambda: False)
    with pytest.raises(click.UsageError, match="nginx is not installed"):
        plan_from_options(compare="nginx")


def test_attaching_takes_loopback_urls_and_the_state_dir(tmp_path: Path) -> None:
    plan = plan_from_options(
        attach="http://127.0.0.1:8080/", attach_site="http://localhost:9000", state_dir=tmp_path
    )
    assert (plan.attach, plan.attach_site, plan.attach_state_dir) == (
        "http://127.0.0.1:8080", "http://localhost:9000", tmp_path,
    )  # fmt: skip


def test_a_replay_log_reports_its_bad_lines_with_their_numbers(tmp_path: Path, capsys) -> None:
    log = tmp_path / "access.log"
    log.write_text(
        '203.0.113.7 - - [10/Oct/2024:13:55:36 +0200] "GET / HTTP/1.1" 200 10 "-" "Mozilla/5.0"\n'
        "garbage\n"
        '203.0.113.8 - - [10/Oct/2024:13:55:37 +0200] "POST /donate HTTP/1.1" 200 10 "-" "Mozilla/5.0"\n'
    )
    plan = plan_from_options(replay=log, speedup=10)
    assert [entry.target for entry in plan.replay] == ["/"] and plan.speedup == 10
    err = capsys.readouterr().err
    assert "access.log: line 2: not in Combined or Common Log Format (skipped)" in err
    assert "line 3: POST is not replayed" in err


def test_a_replay_log_without_a_replayable_line_is_refused(tmp_path: Path) -> None:
    log = tmp_path / "access.log"
    log.write_text("nothing here\n")
    with pytest.raises(click.BadParameter, match="no GET or HEAD request to replay"):
        plan_from_options(replay=log)
    with pytest.raises(click.BadParameter, match=r"missing\.log"):
        plan_from_options(replay=tmp_path / "missing.log")
