"""How many requests the origin may work on at once: a fixed number, or one that adapts (AIMD).

Why AIMD against a latency target, and not a gradient limit (Netflix's Gradient2, Envoy's adaptive
concurrency): a gradient limit compares recent latency with a baseline it learns from the same traffic
it is limiting. Gradient2 learns its baseline as a long-term average, so under *sustained* overload the
baseline becomes the congested latency, the gradient returns to 1 and the limit creeps up to its maximum;
the remedies (Gradient, Vegas, Envoy) periodically pin the limit low to re-measure the unloaded latency,
which during an attack queues everyone, every interval. A DDoS is precisely hours of sustained overload.
AIMD against a latency the operator states has a fixed point that does not move during an attack, is the
well-understood TCP congestion-avoidance loop, and reacts to timeouts and origin failures directly. The
price is one setting: the smoothed origin latency the operator is willing to accept (`latency_target`);
the limit settles where the origin's latency reaches it.

What is compared with the target is an exponentially smoothed latency, not each sample, so one slow route
among fast ones does not cut the limit. After a cut, the next cut waits one smoothed latency: the samples
arriving meanwhile were admitted under the old limit and say nothing new (TCP cuts once per window too).
"""

from __future__ import annotations

from typing import Protocol


class Limit(Protocol):
    """What the admission controller needs from a limit algorithm."""

    limit: int  # requests the origin may work on at once (>= 1); read on every admission

    def on_sample(self, latency: float, in_flight: int, dropped: bool, now: float) -> None:
        """One request finished. `latency`: seconds from admission to the origin's response head;
        `in_flight`: requests at the origin when it finished, itself included; `dropped`: it failed in a
        way that signals overload (timeout, connection refused, 503/504 from the origin)."""
        ...


class FixedLimit:
    """A limit that never moves: for an origin whose capacity is known (PHP-FPM's pm.max_children,
    gunicorn's workers), where adapting only adds noise."""

    __slots__ = ("limit",)

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a limit of at least 1 is required")
        self.limit = limit

    def on_sample(self, latency: float, in_flight: int, dropped: bool, now: float) -> None:
        """A fixed limit learns nothing from samples."""


class AimdLimit:
    """Additive increase while the smoothed latency is under `latency_target`, multiplicative decrease
    (times `backoff`) when it is over it or a request is dropped; always within [min_limit, max_limit].

    Increase is +1 per completed request while in slow start (the limit doubles every round trip, so a
    fresh shield finds a large origin's capacity in a few round trips), then +1/limit per request (about +1
    per round trip) after the first decrease. It grows only while at least half of it is in use: an idle
    limit proves nothing about the origin and would otherwise drift to max_limit in peacetime.
    """

    __slots__ = (
        "_hold_until",
        "_slow_start",
        "_value",
        "backoff",
        "latency_target",
        "limit",
        "max_limit",
        "min_limit",
        "smoothed_latency",
        "smoothing",
    )

    def __init__(
        self,
        *,
        latency_target: float,
        initial: int = 20,
        min_limit: int = 4,
        max_limit: int = 1000,
        backoff: float = 0.9,
        smoothing: float = 0.1,
    ) -> None:
        if not 1 <= min_limit <= initial <= max_limit:
            raise ValueError("1 <= min_limit <= initial <= max_limit is required")
        if latency_target <= 0:
            raise ValueError("latency_target must be positive")
        if not 0 < backoff < 1 or not 0 < smoothing <= 1:
            raise ValueError("0 < backoff < 1 and 0 < smoothing <= 1 are required")
        self.latency_target = latency_target
        self.min_limit = min_limit
        self.max_limit = max_limit
        self.backoff = backoff
        self.smoothing = smoothing
        self._value = float(initial)
        self.limit = initial
        self.smoothed_latency = 0.0  # 0 until the first sample
        self._slow_start = True
        self._hold_until = 0.0

    def on_sample(self, latency: float, in_flight: int, dropped: bool, now: float) -> None:
        if dropped:
            # A timeout's latency is the timeout, a refused connection's is ~0: neither is the origin's
            # service time, so a drop cuts the limit without entering the average.
            overloaded = True
        else:
            smoothed = self.smoothed_latency
            if smoothed:
                smoothed += self.smoothing * (latency - smoothed)
            else:
                smoothed = latency
            self.smoothed_latency = smoothed
            overloaded = smoothed > self.latency_target
        value = self._value
        if overloaded:
            self._slow_start = False
            if now < self._hold_until:
                return
            value = max(self.min_limit, value * self.backoff)
            self._hold_until = now + self.smoothed_latency
        elif in_flight * 2 >= value:
            value = min(self.max_limit, value + (1.0 if self._slow_start else 1.0 / value))
        else:
            return
        self._value = value
        self.limit = int(value)
