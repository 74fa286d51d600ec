"""Difficulty rises with the threat level and the client's offences, within its caps."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shieldwall.challenge.difficulty import DifficultyPolicy

DEFAULT = DifficultyPolicy()


def test_defaults() -> None:
    assert [DEFAULT.bits(level, 0) for level in (0, 1, 2)] == [16, 17, 18]
    assert [DEFAULT.bits(0, offences) for offences in (1, 2, 4, 5, 1000)] == [17, 18, 20, 20, 20]
    assert DEFAULT.bits(2, 4) == 22 == DEFAULT.bits(2, 10**9)
    assert DEFAULT.bits(50, 0) == 22


@given(st.integers(0, 5), st.integers(0, 50), st.integers(0, 5), st.integers(0, 50))
def test_monotone_and_capped(level: int, offences: int, more_levels: int, more_offences: int) -> None:
    low = DEFAULT.bits(level, offences)
    high = DEFAULT.bits(level + more_levels, offences + more_offences)
    assert DEFAULT.base <= low <= high <= DEFAULT.cap


def test_custom_policy() -> None:
    policy = DifficultyPolicy(base=8, per_level=3, per_offence=2, max_offence_bits=3, cap=30)
    assert policy.bits(0, 0) == 8 and policy.bits(1, 1) == 13 and policy.bits(2, 9) == 17


@pytest.mark.parametrize(
    "settings",
    [{"base": 23}, {"cap": 33, "base": 16}, {"base": -1}, {"per_level": -1}, {"max_offence_bits": -2}],
)
def test_invalid_policies(settings: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=r"bits|negative"):
        DifficultyPolicy(**settings)


def test_negative_inputs() -> None:
    with pytest.raises(ValueError, match="negative"):
        DEFAULT.bits(-1, 0)
    with pytest.raises(ValueError, match="negative"):
        DEFAULT.bits(0, -1)
