"""Single use within a token's lifetime, in bounded memory, oldest entries dropped first."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shieldwall.challenge.replay import ReplaySet

NOW = 1_700_000_000.0


def test_a_key_is_used_once_until_it_expires() -> None:
    used = ReplaySet()
    assert used.first_use("a", NOW + 10, NOW)
    assert not used.first_use("a", NOW + 10, NOW)
    assert not used.first_use("a", NOW + 10, NOW + 9.9)
    assert used.first_use("b", NOW + 10, NOW)
    assert used.first_use("a", NOW + 30, NOW + 10)  # its token has expired: nothing left to replay
    assert not used.first_use("a", NOW + 30, NOW + 11)


def test_expired_entries_are_dropped_as_new_ones_arrive() -> None:
    used = ReplaySet()
    for index in range(100):
        used.first_use(f"k{index}", NOW + 10, NOW)
    used.first_use("late", NOW + 100, NOW + 10)
    assert len(used) == 1


def test_memory_is_capped_and_the_oldest_entry_goes_first() -> None:
    used = ReplaySet(max_entries=3)
    for key in "abc":
        assert used.first_use(key, NOW + 60, NOW)
    assert used.first_use("d", NOW + 60, NOW)
    assert len(used) == 3
    assert used.first_use("a", NOW + 60, NOW)  # forgotten: the price of the cap
    assert not used.first_use("c", NOW + 60, NOW) and not used.first_use("d", NOW + 60, NOW)


def test_size_must_be_positive() -> None:
    with pytest.raises(ValueError, match="at least one"):
        ReplaySet(0)


@given(st.lists(st.tuples(st.integers(0, 30), st.integers(1, 20), st.integers(0, 3)), max_size=200))
def test_never_over_the_cap_and_recent_keys_are_never_reused(
    steps: list[tuple[int, int, int]],
) -> None:
    cap = 8
    used = ReplaySet(max_entries=cap)
    now = NOW
    recent: list[tuple[str, float]] = []  # (key, expires) in order of first use
    for key_number, lifetime, advance in steps:
        now += advance
        key = f"k{key_number}"
        live = [(k, e) for k, e in recent[-cap:] if e > now]
        first = used.first_use(key, now + lifetime, now)
        if any(k == key for k, _ in live):
            assert not first  # used within the last `cap` uses and not expired: a replay
        if first:
            recent.append((key, now + lifetime))
        assert len(used) <= cap
