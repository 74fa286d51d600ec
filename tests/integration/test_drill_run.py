"""A short drill through a real shield in front of the real campaign site, scored end to end, and
`shieldwall demo --quick` from start to finish. Bounded: a few seconds per phase, small rates."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shieldwall.drill.live import PlainView
from shieldwall.drill.run import DrillPlan, run_drill
from shieldwall.drill.scenarios import AttackParams
from shieldwall.drill.stack import nginx_config_text
from shieldwall.drill.summary import drill_json, print_results

pytestmark = pytest.mark.integration


def test_a_short_drill_through_the_shield_is_scored_and_plausible(tmp_path: Path, capsys) -> None:
    plan = DrillPlan(
        attack=AttackParams(rate=300.0, sources=300, seconds=5.0),
        before=4.0,
        after=9.0,
        visitors=12,
        think_seconds=(0.3, 1.0),
        hold=2.0,
    )
    (run,) = run_drill(plan, tmp_path, PlainView(sys.stdout, every=1.0))
    reports = print_results([run], sys.stdout)
    out = capsys.readouterr().out
    assert "the attack starts" in out and "scenario: distributed GET flood" in out

    before, during, after = run.card.phases
    assert before.legit_requests > 10 and before.legit_success == 1.0
    assert run.card.peacetime_false_positives == 0
    assert during.attack_sent > 500 and during.leakage is not None and during.leakage < 0.5
    assert during.legit_success is not None and during.legit_success > 0.8
    assert after.attack_sent == 0 and after.legit_requests > 0
    # the shield saw it: the mode went up within seconds, and came down once it was over
    assert run.card.time_to_detect_s is not None and run.card.time_to_detect_s < 5.0
    assert run.time_to_under_attack_s is not None
    assert run.modes is not None and run.modes[-1][1] == "normal"
    # the verified crawler was never challenged, even under attack
    crawler = run.habits["during"]["crawler"]
    assert crawler["requests"] > 0 and crawler["ok"] == crawler["requests"]
    assert run.solver["solved"] > 0 and run.solver["failed"] == 0
    assert run.incidents and all(incident.startswith("INC-") for incident in run.incidents)
    assert all(report.is_file() for files in reports for report in files.reports)
    document = json.loads(json.dumps(drill_json(plan, [run], reports)))
    assert document["setups"][0]["attack"]["sent"] == during.attack_sent
    assert run.problems == []


def test_the_shipped_nginx_config_is_one_nginx_accepts(tmp_path: Path) -> None:
    assert shutil.which("nginx"), "Debian's nginx is missing: make test installs it (scripts/ensure-debs)"
    config = tmp_path / "nginx.conf"
    config.write_text(nginx_config_text(directory=tmp_path, port=18089, site_port=18090))
    checked = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(config), "-e", str(tmp_path / "error.log")],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr


def test_the_quick_demo_tells_the_whole_story_and_exits_0(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "shieldwall", "demo", "--quick", "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=90, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    assert "the shield's mode: normal → elevated" in out or "normal → under_attack" in out
    assert "signature mined" in out and "back to normal mode" in out
    assert "scenario: distributed GET flood" in out and "peacetime false positives" in out
    html = [line.split()[-1] for line in out.splitlines() if line.strip().startswith("report:")]
    assert any(path.endswith(".html") for path in html) and all(Path(path).is_file() for path in html)
    assert "The flood was detected and mitigated" in out
