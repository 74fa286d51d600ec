"""The drill follows the shield's mode from the control state file (times to detect, to under_attack,
back to normal), and the attack library builds each named scenario within its bounds."""

from __future__ import annotations

import pytest

from shieldwall.control.state import ControlState, write_state
from shieldwall.core.clock import FakeClock
from shieldwall.detector.events import Mode
from shieldwall.detector.signatures import Signature
from shieldwall.drill import attacks
from shieldwall.drill.modewatch import ModeWatch
from shieldwall.drill.scenarios import LEGIT_SCENARIOS, SCENARIOS, AttackParams, build

SIG = Signature(
    conditions=(("user_agent", "Go-http-client/1.1"),), coverage=0.9, collateral=0.0,
    action="challenge", created=0.0, expires=1e12,
)  # fmt: skip


def test_mode_changes_are_recorded_at_the_drills_clock(tmp_path):
    clock = FakeClock(start=100.0)
    watch = ModeWatch(tmp_path, clock)
    watch.poll()  # no file yet: nothing known, normal
    assert watch.mode is Mode.NORMAL and watch.first(100.0) is None
    clock.advance(3.0)
    write_state(tmp_path, ControlState(mode=Mode.ELEVATED, signatures=(SIG,), incident="INC-1"))
    watch.poll()
    clock.advance(1.0)
    watch.poll()  # unchanged file: read once
    write_state(tmp_path, ControlState(mode=Mode.UNDER_ATTACK, signatures=(SIG,), incident="INC-1"))
    watch.poll()
    assert [(at, mode) for at, mode in watch.history] == [
        (100.0, Mode.NORMAL), (103.0, Mode.ELEVATED), (104.0, Mode.UNDER_ATTACK),
    ]  # fmt: skip
    assert watch.first(101.0) == 2.0 and watch.first(101.0, at_least=Mode.UNDER_ATTACK) == 3.0
    assert watch.signatures == {SIG.id: SIG.describe()} and watch.incidents == ["INC-1"]
    assert watch.back_to_normal(105.0) is None
    clock.advance(10.0)
    write_state(tmp_path, ControlState(mode=Mode.NORMAL, incident="INC-1"))
    watch.poll()
    assert watch.back_to_normal(105.0) == 9.0


def test_a_damaged_state_file_is_nothing_known(tmp_path):
    watch = ModeWatch(tmp_path, FakeClock())
    (tmp_path / "control").mkdir()
    (tmp_path / "control" / "state.json").write_text("{not json")
    watch.poll()
    assert watch.mode is Mode.NORMAL and len(watch.history) == 1


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_named_scenario_builds_within_its_bounds(name):
    params = AttackParams(rate=800.0, sources=500, seconds=12.0)
    scenario = build(name, params)
    assert scenario.name
    bounds = scenario.bounds
    assert bounds.max_seconds == 12.0
    if name in LEGIT_SCENARIOS:  # one visit each: a page, its assets, an article or two
        assert isinstance(scenario, attacks.FlashCrowd) and scenario.visitors == 500
        assert bounds.max_requests == 500 * 50
    elif isinstance(scenario, attacks.SlowConnections):  # connections held, reopened when cut
        assert scenario.connections == 800 and bounds.max_requests == 800 * 50
    else:
        assert bounds.max_requests == int(800 * 12 * 1.1) + 100
    if isinstance(scenario, attacks.DistributedFlood):
        assert (scenario.rate, scenario.sources, scenario.connections) == (800.0, 500, 800)


def test_the_attack_figures_are_bounded():
    with pytest.raises(ValueError, match="unknown scenario"):
        build("nuke", AttackParams())
    for bad in (
        AttackParams(rate=0),
        AttackParams(rate=10_000),
        AttackParams(sources=0),
        AttackParams(seconds=601),
    ):
        with pytest.raises(ValueError, match="must be within"):
            build("distributed-flood", bad)
    assert AttackParams(rate=5.0).connections == 20 and AttackParams(rate=5_000).connections == 2_000
