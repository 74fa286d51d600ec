"""Baselines: the EWMA learns a level and its spread, waits for its warm-up, resists spikes, and scores
with floors so that a quiet metric does not turn a wobble into an alarm."""

from __future__ import annotations

import math
import random

import pytest

from shieldwall.detector.baseline import Baseline, Ewma, MetricSpec

ALPHA = 1 - 0.5 ** (1 / 300)


def rate_baseline(warmup: int = 60) -> Baseline:
    return Baseline([MetricSpec("rps", min_std=1.0, rel_std=0.1, poisson=True)], ALPHA, warmup, clip_z=3.0)


def test_ewma_learns_mean_and_spread_of_a_noisy_level() -> None:
    rng = random.Random(1)
    ewma = Ewma(ALPHA)
    for _ in range(3000):
        ewma.update(rng.gauss(50, 7))
    assert ewma.mean == pytest.approx(50, abs=1.5)
    assert math.sqrt(ewma.var) == pytest.approx(7, abs=1.5)


def test_ewma_averages_plainly_while_young() -> None:
    ewma = Ewma(ALPHA)
    for value in (10, 20, 30):
        ewma.update(value)
    assert ewma.mean == pytest.approx(20)


def test_ewma_moves_halfway_in_one_half_life() -> None:
    ewma = Ewma(ALPHA)
    for _ in range(5000):
        ewma.update(100)
    for _ in range(300):
        ewma.update(200)
    assert ewma.mean == pytest.approx(150, abs=1)


def test_baseline_is_ready_after_its_warmup() -> None:
    baseline = rate_baseline(warmup=10)
    for second in range(10):
        assert not baseline.ready
        baseline.learn({"rps": 50.0})
        assert baseline.learned == second + 1
    assert baseline.ready


def test_a_spike_is_clipped_when_learned() -> None:
    baseline = rate_baseline(warmup=10)
    for _ in range(600):
        baseline.learn({"rps": 50.0})
    baseline.learn({"rps": 5000.0})
    # Clipped to mean + 3 x max(std, sqrt(50), 5): the mean moves by at most ALPHA x 21.
    assert baseline.mean("rps") <= 50 + ALPHA * 3 * math.sqrt(50) + 1e-9


def test_zero_weight_learns_nothing() -> None:
    baseline = rate_baseline(warmup=1)
    baseline.learn({"rps": 50.0})
    baseline.learn({"rps": 70.0}, weight=0.0)
    assert baseline.mean("rps") == 50.0 and baseline.learned == 1


def test_scores_use_the_deviation_floors() -> None:
    baseline = Baseline(
        [MetricSpec("rps", min_std=1.0, rel_std=0.1, poisson=True), MetricSpec("share", min_std=0.05)],
        ALPHA,
        warmup=1,
        clip_z=3.0,
    )
    for _ in range(100):
        baseline.learn({"rps": 100.0, "share": 0.2})  # no variance at all
    rate = baseline.score("rps", 130.0)
    assert rate.std == pytest.approx(10.0)  # max(0, 1, 0.1 x 100, sqrt(100))
    assert rate.z == pytest.approx(3.0) and rate.ratio == pytest.approx(1.3)
    share = baseline.score("share", 0.5)
    assert share.std == 0.05 and share.z == pytest.approx(6.0)
    assert baseline.means() == {"rps": pytest.approx(100.0), "share": pytest.approx(0.2)}


def test_ratio_of_a_metric_that_was_zero_is_finite() -> None:
    baseline = rate_baseline(warmup=1)
    baseline.learn({"rps": 0.0})
    assert baseline.score("rps", 30.0).ratio == 30.0
