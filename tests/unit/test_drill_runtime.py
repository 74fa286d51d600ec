"""Bounds, budgets, the pacer and run_within: what keeps every drill loop finite, on a FakeClock."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shieldwall.core.clock import FakeClock
from shieldwall.drill.runtime import Bounds, Budget, Pacer, run_within


def test_a_budget_stops_at_its_count():
    clock = FakeClock()
    budget = Budget(Bounds(3, 60.0), clock)
    assert [budget.take() for _ in range(5)] == [True, True, True, False, False]
    assert budget.taken == 3 and budget.expired()


def test_a_budget_stops_at_its_deadline():
    clock = FakeClock()
    budget = Budget(Bounds(1000, 2.0), clock)
    assert budget.take()
    clock.advance(1.999)
    assert budget.take() and budget.seconds_left() == pytest.approx(0.001)
    clock.advance(0.001)
    assert not budget.take() and budget.expired() and budget.seconds_left() == 0.0
    assert budget.taken == 2


def test_a_nested_budget_is_charged_to_its_parent_and_ends_with_it():
    clock = FakeClock()
    outer = Budget(Bounds(5, 10.0), clock)
    inner = Budget(Bounds(100, 30.0), clock, within=outer)
    assert inner.deadline == outer.deadline
    assert sum(inner.take() for _ in range(10)) == 5
    assert outer.taken == 5 and outer.expired() and inner.expired()
    fresh = Budget(Bounds(100, 1.0), clock, within=Budget(Bounds(100, 10.0), clock))
    clock.advance(1.0)
    assert fresh.expired() and not fresh.take()


def test_an_inner_budget_that_is_out_spends_nothing_of_the_outer():
    clock = FakeClock()
    outer = Budget(Bounds(10, 10.0), clock)
    inner = Budget(Bounds(2, 10.0), clock, within=outer)
    assert sum(inner.take() for _ in range(5)) == 2
    assert outer.taken == 2 and outer.left == 8


def test_bounds_must_not_be_negative():
    with pytest.raises(ValueError, match="negative"):
        Bounds(-1, 1.0)
    with pytest.raises(ValueError, match="negative"):
        Bounds(1, float("nan"))


@given(rate=st.floats(0.5, 5000), idle=st.lists(st.floats(0, 3), min_size=1, max_size=50))
def test_the_pacer_never_hands_out_slots_closer_than_its_interval(rate, idle):
    clock = FakeClock()
    pacer = Pacer(rate, clock)
    sends = []
    for pause in idle:
        clock.advance(pause)  # the caller was busy (or idle) for a while
        wait = pacer.reserve()
        assert wait >= 0
        sends.append(clock.monotonic() + wait)
    gaps = [b - a for a, b in itertools.pairwise(sends)]
    assert all(gap >= 1 / rate - 1e-9 for gap in gaps)


def test_the_pacer_does_not_burst_after_idling():
    clock = FakeClock()
    pacer = Pacer(10.0, clock)
    assert pacer.reserve() == 0.0
    clock.advance(5.0)  # fifty slots went unused
    assert pacer.reserve() == 0.0
    assert pacer.reserve() == pytest.approx(0.1)
    assert pacer.reserve() == pytest.approx(0.2)


def test_run_within_cancels_what_outlives_the_deadline():
    clock = FakeClock()
    cancelled = []

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def quick() -> None:
        await asyncio.sleep(0)

    async def main() -> tuple[bool, bool]:
        ended = await run_within(Budget(Bounds(1, 0.0), clock), [quick()], grace=0.0)
        cut = await run_within(Budget(Bounds(1, 0.0), clock), [forever(), forever()], grace=0.0)
        return ended, cut

    assert asyncio.run(main()) == (True, False)
    assert cancelled == [True, True]


def test_run_within_raises_a_jobs_failure_and_stops_the_others():
    clock = FakeClock()
    cancelled = []

    async def broken() -> None:
        await asyncio.sleep(0)
        raise ZeroDivisionError

    async def waiting() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    with pytest.raises(ZeroDivisionError):
        asyncio.run(run_within(Budget(Bounds(1, 3600.0), clock), [broken(), waiting()]))
    assert cancelled == [True]
