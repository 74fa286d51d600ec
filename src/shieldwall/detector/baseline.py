"""What each metric looks like in peacetime: an exponentially weighted mean and variance per metric.

The detector decides *when* to learn (only calm seconds, slower while elevated, never under attack: an
attack that is learned becomes the baseline it is judged against); this module only learns and scores.

Two guards keep a baseline honest:
- a learned value is clipped to mean + clip_z deviations, so a spike that did not raise an alarm still
  cannot drag the mean far, while a genuine slow rise (a campaign, the morning) is followed;
- deviations have a floor (`MetricSpec`): a quiet metric's variance shrinks towards zero and would turn
  any wobble into a huge z-score. Request counts get the Poisson floor sqrt(mean) as well.

Time of day: not modelled. A day's rise and fall is far slower than the 5-minute half-life, so one
baseline follows it with a lag of a few percent; hour-of-day baselines would only help sudden scheduled
jumps (a newsletter at 9:00), at the price of 24 warm-ups.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MetricSpec:
    name: str
    min_std: float  # deviations never count as smaller than this...
    rel_std: float = 0.0  # ...nor than this share of the mean...
    poisson: bool = False  # ...nor, for counts, than sqrt(mean)


@dataclass(frozen=True, slots=True)
class Score:
    value: float
    mean: float
    std: float  # the deviation used, floors applied
    z: float  # (value - mean) / std
    ratio: float  # value / mean (mean floored at min_std, so never a division by zero)


class Ewma:
    """Exponentially weighted mean and variance (West, 1979). The first samples are averaged plainly
    (the weight is at least 1/count) so that a short warm-up already gives a fair mean."""

    __slots__ = ("alpha", "count", "mean", "var")

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha
        self.mean = 0.0
        self.var = 0.0
        self.count = 0

    def update(self, value: float, weight: float = 1.0) -> None:
        self.count += 1
        alpha = max(self.alpha, 1 / self.count) * weight
        diff = value - self.mean
        increment = alpha * diff
        self.mean += increment
        self.var = (1 - alpha) * (self.var + diff * increment)


class Baseline:
    """One `Ewma` per metric, judged ready after `warmup` learned seconds."""

    def __init__(self, specs: Iterable[MetricSpec], alpha: float, warmup: int, clip_z: float) -> None:
        self.specs = {spec.name: spec for spec in specs}
        self.warmup = warmup
        self.clip_z = clip_z
        self.learned = 0  # seconds learned
        self._ewma = {name: Ewma(alpha) for name in self.specs}

    @property
    def ready(self) -> bool:
        return self.learned >= self.warmup

    def mean(self, name: str) -> float:
        return self._ewma[name].mean

    def score(self, name: str, value: float) -> Score:
        spec, ewma = self.specs[name], self._ewma[name]
        std = self._std(spec, ewma)
        return Score(value, ewma.mean, std, (value - ewma.mean) / std, value / max(ewma.mean, spec.min_std))

    def learn(self, values: Mapping[str, float], weight: float = 1.0) -> None:
        """Learn one second (metrics missing from `values` are left as they are); `weight` in (0, 1]
        slows learning down. During warm-up values are taken as they are: there is nothing to clip to."""
        if weight <= 0:
            return
        for name, value in values.items():
            ewma = self._ewma[name]
            ceiling = ewma.mean + self.clip_z * self._std(self.specs[name], ewma) if self.ready else value
            ewma.update(min(value, ceiling), weight)
        self.learned += 1

    def means(self) -> dict[str, float]:
        """The mean of every metric learned at least once."""
        return {name: ewma.mean for name, ewma in self._ewma.items() if ewma.count}

    @staticmethod
    def _std(spec: MetricSpec, ewma: Ewma) -> float:
        std = max(math.sqrt(max(ewma.var, 0.0)), spec.min_std, spec.rel_std * abs(ewma.mean))
        if spec.poisson:
            std = max(std, math.sqrt(max(ewma.mean, 0.0)))
        return std
