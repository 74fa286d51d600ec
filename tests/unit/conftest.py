"""Fixtures shared by the unit tests of the data plane."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from rig import Rig


@pytest.fixture
def make_rig() -> Iterator[Callable[..., Rig]]:
    rigs: list[Rig] = []

    def make(config: dict[str, object] | None = None) -> Rig:
        rigs.append(Rig(config))
        return rigs[-1]

    yield make
    for r in rigs:
        r.close()


@pytest.fixture
def rig(make_rig: Callable[..., Rig]) -> Rig:
    return make_rig()
