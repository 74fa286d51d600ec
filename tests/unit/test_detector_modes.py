"""The mode ladder, driven by per-second levels: up within seconds, down one step per calm hold, no flapping
on pulse waves, operator pins over it, and an event for every change."""

from __future__ import annotations

from collections.abc import Iterable

from hypothesis import given, settings
from hypothesis import strategies as st

from shieldwall.detector.events import Event, EventKind, Mode
from shieldwall.detector.modes import Ladder

WALL = 1_700_000_000.0


def run(ladder: Ladder, levels: Iterable[int], start: float = 0.0) -> list[tuple[float, Mode]]:
    """Feed one level per second from `start`; returns the mode after each second."""
    modes = []
    for offset, level in enumerate(levels):
        now = start + offset
        ladder.update(now, WALL + now, level, f"level {level}", {"rps": float(level)})
        modes.append((now, ladder.mode))
    return modes


def changes(events: Iterable[Event]) -> list[tuple[float, Mode | None, Mode | None]]:
    return [(event.at, event.old, event.new) for event in events if event.kind == EventKind.MODE]


def test_a_flood_is_under_attack_on_its_third_second() -> None:
    ladder = Ladder()
    run(ladder, [0] * 10)
    events = [
        event for second in range(10, 13) for event in ladder.update(second, WALL, 2, "flood", {"rps": 5e3})
    ]
    assert ladder.mode is Mode.UNDER_ATTACK
    assert changes(events) == [(11, Mode.NORMAL, Mode.ELEVATED), (12, Mode.ELEVATED, Mode.UNDER_ATTACK)]
    assert events[0].reason == "flood" and events[0].values == {"rps": 5e3} and events[0].wall == WALL


def test_the_ladder_may_jump_straight_to_under_attack() -> None:
    ladder = Ladder(elevate_after=3, attack_after=3)
    events = [event for second in range(3) for event in ladder.update(second, WALL, 2, "flood", {})]
    assert changes(events) == [(2, Mode.NORMAL, Mode.UNDER_ATTACK)]


def test_two_suspicious_seconds_in_five_elevate_and_one_does_not() -> None:
    ladder = Ladder()
    assert run(ladder, [1, 0, 0, 0, 0, 0])[-1][1] is Mode.NORMAL
    modes = run(ladder, [1, 0, 0, 1], start=10)
    assert [mode for _, mode in modes] == [Mode.NORMAL] * 3 + [Mode.ELEVATED]


def test_steps_down_one_step_per_hold_of_calm() -> None:
    ladder = Ladder(hold=30)
    run(ladder, [2] * 5)
    events: list[Event] = []
    for now in range(5, 100):
        events += ladder.update(now, WALL, 0, "calm", {})
    # Calm from 5: the hold is complete at 35, and the next one 30 s after that step.
    assert changes(events) == [(35, Mode.UNDER_ATTACK, Mode.ELEVATED), (65, Mode.ELEVATED, Mode.NORMAL)]
    assert events[0].reason == "calm for 30 s"


def test_one_loud_second_restarts_the_hold() -> None:
    ladder = Ladder(hold=30)
    modes = dict(run(ladder, [2] * 5 + [0] * 29 + [2] + [0] * 40))
    assert modes[64] is Mode.UNDER_ATTACK
    assert modes[65] is Mode.ELEVATED  # calm from 35, one step 30 s later


def test_a_suspicious_second_does_not_hold_under_attack_but_holds_elevated() -> None:
    ladder = Ladder(hold=30)
    modes = dict(run(ladder, [2] * 5 + [1] * 60))
    assert modes[34] is Mode.UNDER_ATTACK
    assert modes[35] is Mode.ELEVATED
    assert modes[64] is Mode.ELEVATED  # level 1 is not calm for ELEVATED


def test_a_pulse_wave_does_not_flap_back_to_normal() -> None:
    ladder = Ladder(hold=30)
    run(ladder, [0] * 30)
    pulses = ([2] * 10 + [0] * 20) * 10  # 10 s on, 20 s off, for five minutes
    modes = run(ladder, pulses, start=30)
    first_attack = next(now for now, mode in modes if mode is Mode.UNDER_ATTACK)
    assert first_attack == 32
    assert all(mode is Mode.UNDER_ATTACK for now, mode in modes if now >= first_attack)
    tail = run(ladder, [0] * 70, start=330)
    assert tail[-1][1] is Mode.NORMAL


def test_pulses_with_gaps_longer_than_the_hold_step_down_but_never_to_normal() -> None:
    ladder = Ladder(hold=30)
    modes = run(ladder, ([2] * 10 + [0] * 45) * 5)
    after_first = [mode for now, mode in modes if now >= 2]
    assert Mode.ELEVATED in after_first
    assert Mode.NORMAL not in after_first


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2), max_size=200), st.integers(min_value=1, max_value=40))
def test_never_steps_down_twice_within_one_hold(levels: list[int], hold: int) -> None:
    ladder = Ladder(hold=hold)
    downs: list[float] = []
    for now, level in enumerate(levels):
        for event in ladder.update(now, WALL, level, "", {}):
            if event.kind == EventKind.MODE and event.new is not None and event.old is not None:
                assert abs(event.new.level - event.old.level) == 1 or event.new.level > event.old.level
                if event.new.level < event.old.level:
                    assert not downs or now - downs[-1] >= hold
                    downs.append(now)


def test_a_pin_overrides_and_unpin_returns_to_what_the_traffic_calls_for() -> None:
    ladder = Ladder()
    events = ladder.pin(Mode.UNDER_ATTACK, None, 5.0, WALL, reason="ops: donation drive")
    assert [event.kind for event in events] == [EventKind.PIN, EventKind.MODE]
    assert events[0].reason == "pinned under_attack: ops: donation drive"
    run(ladder, [0] * 100, start=6)
    assert (ladder.mode, ladder.auto) == (Mode.UNDER_ATTACK, Mode.NORMAL)
    # The ladder keeps running underneath: a flood during the pin moves the automatic mode.
    events = [event for now in range(106, 109) for event in ladder.update(now, WALL, 2, "flood", {})]
    assert [(event.kind, event.new) for event in events] == [
        (EventKind.AUTO_MODE, Mode.ELEVATED),
        (EventKind.AUTO_MODE, Mode.UNDER_ATTACK),
    ]
    run(ladder, [0] * 31, start=109)
    assert ladder.auto is Mode.ELEVATED
    events = ladder.unpin(140.0, WALL)
    assert [(event.kind, event.old, event.new) for event in events] == [
        (EventKind.UNPIN, Mode.UNDER_ATTACK, Mode.ELEVATED),
        (EventKind.MODE, Mode.UNDER_ATTACK, Mode.ELEVATED),
    ]
    assert ladder.mode is Mode.ELEVATED
    assert ladder.unpin(141.0, WALL) == []


def test_a_pin_expires_by_itself() -> None:
    ladder = Ladder()
    ladder.pin(Mode.ELEVATED, 20.0, 10.0, WALL)
    assert ladder.pinned_until == 20.0
    run(ladder, [0] * 9, start=11)
    assert ladder.mode is Mode.ELEVATED
    events = ladder.update(20.0, WALL, 0, "", {})
    assert [(event.kind, event.reason) for event in events] == [
        (EventKind.UNPIN, "pin expired"),
        (EventKind.MODE, "pin expired"),
    ]
    assert (ladder.mode, ladder.pinned) == (Mode.NORMAL, None)


def test_pinning_the_mode_already_in_force_changes_nothing_but_is_recorded() -> None:
    ladder = Ladder()
    events = ladder.pin(Mode.NORMAL, 100.0, 0.0, WALL)
    assert [event.kind for event in events] == [EventKind.PIN]
    assert events[0].reason == "pinned normal for 100 s"
    run(ladder, [2] * 5, start=1)
    assert ladder.mode is Mode.NORMAL and ladder.auto is Mode.UNDER_ATTACK
