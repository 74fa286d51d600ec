"""The detector against data-driven scenarios (tests/scenarios/*/, see the README there): each folder's
synthetic traffic runs sans-io through the real telemetry, mode effects and control loop, and the
mode changes, signatures and incident must meet its expected file. Per scenario the test prints the
time to detect (the measured phases' start until the mode leaves normal, and until under_attack) and
the time to return to normal (their end until normal), and the module ends with a table of them.

A scenario whose expected file has `xfail = "why"` is a known failure of the detector: it is reported
as an expected failure, and as an error once the detector gets it right (strict), so that the mark goes."""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from scenarios.documents import ScenarioError
from scenarios.expected import Expected
from scenarios.runner import Result, Scenario, run

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"


def _scenarios() -> Iterator[object]:
    for folder in sorted(path for path in SCENARIOS.iterdir() if (path / "config.toml").is_file()):
        reason = Expected.load(folder).xfail
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        yield pytest.param(folder, id=folder.name, marks=marks)


def _row(result: Result) -> str:
    timings = result.timings

    def shown(value: int | None) -> str:
        return "-" if value is None else f"{value} s"

    return (
        f"{result.name:<24} {shown(timings.detect):>8} {shown(timings.under_attack):>13} "
        f"{shown(timings.normal):>8} {shown(timings.closed):>17} {timings.peak_ratio:>10.1f}x"
    )


@pytest.fixture(scope="module")
def timings_table(request: pytest.FixtureRequest) -> Iterator[list[str]]:
    """Rows of the table written at the end of the module, past output capture (as capsys.disabled()
    does), so that it shows whatever -s or -q say."""
    rows: list[str] = []
    yield rows
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None or not rows:
        return
    with capture.global_and_fixture_disabled():
        reporter.write_line("")
        reporter.write_line(
            f"{'scenario':<24} {'detect':>8} {'under_attack':>13} {'normal':>8} {'incident closed':>17} "
            f"{'peak rate':>11}"
        )
        for row in rows:
            reporter.write_line(row)
        reporter.write_line("(detect, under_attack: from the start; normal, incident closed: from the end)")


@pytest.mark.parametrize("folder", list(_scenarios()))
def test_the_scenario_meets_its_expectations(folder: Path, timings_table: list[str]) -> None:
    scenario = Scenario.load(folder)
    result = run(scenario)
    timings_table.append(_row(result))
    print(result.summary())
    problems = scenario.expected.check(result)
    assert not problems, f"{scenario.name}:\n  " + "\n  ".join(problems) + "\n" + result.summary()


TINY_CONFIG = """
[detector]
warmup = 5
hold = 5.0
attack_rps = 60.0
"""

TINY_TRAFFIC = """
seed = 5
duration = 30

[pools.people]
count = 8
network = "198.51.100.0/24"
solves_challenges = true

[pools.bots]
count = 3
network = "203.0.113.0/24"

[headers.chrome]
preset = "chrome"

[profiles.page]
headers = { chrome = 1 }
paths = { "/" = 1 }

[[phases]]
name = "people"
pool = "people"
profile = "page"
rate = 40
noise = false

[[phases]]
name = "bots"
pool = "bots"
profile = "page"
start = 10
end = 20
rate = 40
noise = false
measure = true
"""


def _tiny(tmp_path: Path, traffic: str = TINY_TRAFFIC, expected: str = "") -> Scenario:
    (tmp_path / "config.toml").write_text(TINY_CONFIG)
    (tmp_path / "traffic.toml").write_text(traffic)
    (tmp_path / "expected.toml").write_text(expected)
    return Scenario.load(tmp_path)


def test_every_request_is_counted_and_real_visitors_solve_the_challenge_once(tmp_path: Path) -> None:
    """80 requests/s (over attack_rps 60) from t = 10 to 20: elevated after two seconds, with a signature
    on the bots' network, under attack after three; each of the 8 people is challenged exactly once
    (under attack), the bots every time from the third second on (the signature)."""
    result = run(_tiny(tmp_path))
    assert [tick.rps for tick in result.ticks[:10]] == [40.0] * 10
    assert [tick.rps for tick in result.ticks[10:20]] == [80.0] * 10
    assert [(change.t, change.new) for change in result.changes][:2] == [
        (12, "elevated"),
        (13, "under_attack"),
    ]
    people, bots = result.phases["people"], result.phases["bots"]
    assert people.requests == bots.requests * 3 == 1200
    assert people.challenged == 8 and people.blocked == 0
    assert bots.challenged + bots.blocked == bots.by_signature == bots.requests - 2 * 40
    assert result.timings.detect == 2 and result.timings.under_attack == 3


def test_the_same_description_gives_the_same_run_whether_in_toml_or_json(tmp_path: Path) -> None:
    first = run(_tiny(tmp_path))
    (tmp_path / "traffic.toml").unlink()
    (tmp_path / "traffic.json").write_text(json.dumps(tomllib.loads(TINY_TRAFFIC)))
    second = run(Scenario.load(tmp_path))
    assert first.ticks == second.ticks and first.changes == second.changes
    assert first.signatures == second.signatures and first.phases == second.phases
    assert first.signatures, "the bots' network was mined: there is something to compare"


def test_a_failed_expectation_is_reported_in_words(tmp_path: Path) -> None:
    expected = '[modes]\nnever_above = "elevated"\n[phases.bots]\nmax_mitigated_share = 0.1\n'
    scenario = _tiny(tmp_path, expected=expected)
    problems = scenario.expected.check(run(scenario))
    assert problems[0].startswith("modes.never_above is elevated but the mode was under_attack at t=13")
    assert problems[1].startswith("phases.bots.max_mitigated_share is 0.1 but the share was 0.8000")


@pytest.mark.parametrize(
    ("written", "mistake", "message"),
    [
        ("rate = 40\nnoise = false\nmeasure", "rate = 40\nrate_ned = 80\nnoise = false\nmeasure", "rate_ned"),
        ('pool = "bots"', 'pool = "robots"', "unknown pool 'robots'"),
        ('paths = { "/" = 1 }', 'paths = { "/?x=1" = 1 }', "'/?x=1' must be a path"),
    ],
)
def test_a_mistake_in_a_scenario_file_names_its_key(
    tmp_path: Path, written: str, mistake: str, message: str
) -> None:
    assert written in TINY_TRAFFIC
    with pytest.raises(ScenarioError, match=re.escape(message)):
        _tiny(tmp_path, TINY_TRAFFIC.replace(written, mistake))
