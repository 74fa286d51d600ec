"""The origin's concurrency limit: AIMD against a latency target, and the fixed limit."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shieldwall.admission.limits import AimdLimit, FixedLimit

TARGET = 0.1  # seconds


def feed(
    limit: AimdLimit, latency: float, count: int, now: float, *, busy: bool = True, step: float = 0.01
) -> float:
    """`count` samples `step` seconds apart, each with the limit fully in use (or idle)."""
    for _ in range(count):
        now += step
        limit.on_sample(latency, limit.limit if busy else 0, False, now)
    return now


def test_slow_start_doubles_per_round_trip_while_latency_is_under_target() -> None:
    limit = AimdLimit(latency_target=TARGET, initial=10, max_limit=1000)
    feed(limit, 0.05, 10, 0.0)
    assert limit.limit == 20  # +1 per completed request: ten completions, ten more slots
    feed(limit, 0.05, 20, 1.0)
    assert limit.limit == 40


def test_after_the_first_cut_growth_is_about_one_per_round_trip() -> None:
    limit = AimdLimit(latency_target=TARGET, initial=100, max_limit=1000)
    limit.on_sample(0.5, 100, False, 0.0)
    assert limit.limit == 90
    # the smoothed latency must come back under the target first; then ~ +1 per `limit` completions
    now = feed(limit, 0.01, 30, 1.0)
    grown = limit.limit
    feed(limit, 0.01, grown, now)
    assert limit.limit == grown + 1


def test_latency_over_target_cuts_the_limit_once_per_smoothed_latency() -> None:
    limit = AimdLimit(latency_target=TARGET, initial=100, backoff=0.5, smoothing=1.0)
    limit.on_sample(0.4, 100, False, 10.0)
    assert limit.limit == 50
    # samples within the next 0.4 s were admitted under the old limit: no second cut yet
    limit.on_sample(0.4, 50, False, 10.2)
    limit.on_sample(0.4, 50, False, 10.39)
    assert limit.limit == 50
    limit.on_sample(0.4, 50, False, 10.41)
    assert limit.limit == 25


def test_one_slow_request_among_fast_ones_does_not_cut_the_limit() -> None:
    limit = AimdLimit(latency_target=TARGET, initial=50, smoothing=0.1)
    now = feed(limit, 0.02, 50, 0.0)
    before = limit.limit
    limit.on_sample(0.5, before, False, now)  # one slow route: the smoothed latency stays under target
    assert limit.limit >= before
    assert limit.smoothed_latency < TARGET


def test_drops_cut_the_limit_without_polluting_the_latency_average() -> None:
    limit = AimdLimit(latency_target=TARGET, initial=40)
    now = feed(limit, 0.02, 5, 0.0)
    smoothed, before = limit.smoothed_latency, limit.limit
    limit.on_sample(30.0, before, True, now + 1)  # a timeout after 30 s
    assert limit.limit == int(before * 0.9)
    assert limit.smoothed_latency == smoothed


def test_timeouts_drive_the_limit_to_its_floor_and_no_lower() -> None:
    limit = AimdLimit(latency_target=TARGET, initial=200, min_limit=4, max_limit=500)
    now = 0.0
    for _ in range(200):
        now += 1.0
        limit.on_sample(5.0, limit.limit, True, now)
    assert limit.limit == 4


def test_a_healthy_busy_origin_grows_the_limit_to_its_ceiling_and_no_higher() -> None:
    limit = AimdLimit(latency_target=TARGET, initial=4, min_limit=4, max_limit=64)
    feed(limit, 0.02, 500, 0.0)
    assert limit.limit == 64


def test_an_idle_limit_does_not_grow() -> None:
    """Peacetime proves nothing about the origin's capacity: the limit grows only while half used."""
    limit = AimdLimit(latency_target=TARGET, initial=20)
    feed(limit, 0.01, 1000, 0.0, busy=False)
    assert limit.limit == 20


def test_the_limit_recovers_once_the_origin_does() -> None:
    limit = AimdLimit(latency_target=TARGET, initial=100, min_limit=2)
    now = feed(limit, 1.0, 100, 0.0, step=1.0)  # a sick origin: 1 s answers
    sick = limit.limit
    assert sick < 10
    feed(limit, 0.02, 2000, now)
    assert limit.limit > 3 * sick


@settings(max_examples=200, deadline=None)
@given(
    bounds=st.tuples(st.integers(1, 50), st.integers(0, 50), st.integers(0, 50)),
    samples=st.lists(
        st.tuples(st.floats(0, 5), st.integers(0, 200), st.booleans(), st.floats(0, 2)), max_size=200
    ),
)
def test_the_limit_always_stays_within_its_bounds(
    bounds: tuple[int, int, int], samples: list[tuple[float, int, bool, float]]
) -> None:
    low, up_to_initial, up_to_max = bounds
    initial, high = low + up_to_initial, low + up_to_initial + up_to_max
    limit = AimdLimit(latency_target=TARGET, initial=initial, min_limit=low, max_limit=high)
    now = 0.0
    for latency, in_flight, dropped, gap in samples:
        now += gap
        limit.on_sample(latency, in_flight, dropped, now)
        assert low <= limit.limit <= high


def test_a_fixed_limit_never_moves() -> None:
    limit = FixedLimit(32)
    for dropped in (False, True):
        limit.on_sample(10.0, 32, dropped, 1.0)
    assert limit.limit == 32


@pytest.mark.parametrize(
    "kwargs",
    [
        {"latency_target": 0.0},
        {"latency_target": 0.1, "min_limit": 0},
        {"latency_target": 0.1, "initial": 2, "min_limit": 4},
        {"latency_target": 0.1, "initial": 20, "max_limit": 10},
        {"latency_target": 0.1, "backoff": 1.0},
        {"latency_target": 0.1, "smoothing": 0.0},
    ],
)
def test_nonsense_settings_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        AimdLimit(**kwargs)  # type: ignore[arg-type]


def test_a_fixed_limit_below_one_is_refused() -> None:
    with pytest.raises(ValueError):
        FixedLimit(0)
