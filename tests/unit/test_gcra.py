"""GCRA: the admitted count in any window never exceeds burst + rate x window, and memory stays bounded."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shieldwall.limiter.gcra import Gcra

EPS = 1e-9


@settings(max_examples=300, deadline=None)
@given(
    rate=st.floats(min_value=0.5, max_value=200),
    burst=st.integers(min_value=1, max_value=50),
    gaps=st.lists(st.floats(min_value=0, max_value=0.5), min_size=1, max_size=400),
)
def test_never_admits_more_than_rate_times_window_plus_burst(
    rate: float, burst: int, gaps: list[float]
) -> None:
    limiter = Gcra(rate, burst)
    now, admitted = 1000.0, []
    for gap in gaps:
        now += gap
        if limiter.check("k", now).allowed:
            admitted.append(now)
    for i, start in enumerate(admitted):
        for j in range(i, len(admitted)):
            window = admitted[j] - start
            assert j - i + 1 <= burst + math.floor(rate * window + EPS), (start, window)


@settings(max_examples=100, deadline=None)
@given(rate=st.floats(min_value=1, max_value=100), burst=st.integers(min_value=1, max_value=20))
def test_a_steady_client_under_the_rate_is_never_refused(rate: float, burst: int) -> None:
    limiter = Gcra(rate, burst)
    now = 0.0
    for _ in range(200):
        now += 1.0 / rate * 1.0001
        assert limiter.check("k", now).allowed


def test_retry_after_says_when_the_next_request_is_admitted() -> None:
    limiter = Gcra(rate=2, burst=2)
    assert limiter.check("k", 0.0).allowed and limiter.check("k", 0.0).allowed
    verdict = limiter.check("k", 0.0)
    assert not verdict.allowed and verdict.retry_after == pytest.approx(0.5)
    assert not limiter.check("k", 0.49).allowed
    assert limiter.check("k", 0.5).allowed


def test_keys_are_independent() -> None:
    limiter = Gcra(rate=1, burst=1)
    assert limiter.check("a", 0).allowed and limiter.check("b", 0).allowed
    assert not limiter.check("a", 0).allowed


def test_table_is_bounded_and_keeps_the_heaviest_key() -> None:
    limiter = Gcra(rate=1, burst=50, max_keys=100)
    for _ in range(50):  # a heavy key: 50 admitted at once, so it owes 50 s (refusals add no debt)
        assert limiter.check("heavy", 0.0).allowed
    for i in range(10_000):  # a flood of distinct one-off keys
        limiter.check(f"k{i}", 0.0)
        assert len(limiter) <= 100
    assert not limiter.check("heavy", 0.0).allowed, "the heavy key's debt survived the flood"


def test_invalid_parameters_are_refused() -> None:
    with pytest.raises(ValueError):
        Gcra(rate=0, burst=1)
    with pytest.raises(ValueError):
        Gcra(rate=1, burst=0)
