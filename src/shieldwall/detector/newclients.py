"""How many of this second's clients had not been seen recently, without remembering any client.

The supervisor keeps the union of the per-second distinct-client sketches in two generations of
`window` seconds each (so "recently" means the last 1 to 2 windows) and reads how much the union's
estimate grows when a second is folded in. The memory is two HyperLogLogs whatever the number of clients.
The difference of two estimates is noisy (the sketch's ~0.8 % error applies to the whole union), which
is why a surge must be several times its baseline before it counts; a returning visitor whose last
visit fell out of both generations counts as new again.
"""

from __future__ import annotations

from shieldwall.detector.sketches import HyperLogLog


class NewClients:
    def __init__(self, window: float) -> None:
        self.window = window
        self._current: HyperLogLog | None = None  # clients of this generation
        self._seen: HyperLogLog | None = None  # the union of the previous generation and this one
        self._seen_estimate = 0.0
        self._started = 0.0

    def observe(self, clients: HyperLogLog, now: float) -> float:
        """Fold in one second's clients; returns the estimated number not seen in the recent past.
        The sketches take the workers' precision; a change of precision (a reload) starts afresh."""
        current, seen = self._current, self._seen
        if current is None or seen is None or current.precision != clients.precision:
            current, seen = HyperLogLog(clients.precision), HyperLogLog(clients.precision)
            self._seen_estimate, self._started = 0.0, now
        elif now - self._started >= self.window:
            # The generation that ends becomes the previous one: alone, it is the union of what is kept.
            current, seen = HyperLogLog(clients.precision), current
            self._seen_estimate, self._started = seen.estimate(), now
        current.merge(clients)
        seen.merge(clients)
        self._current, self._seen = current, seen
        before, self._seen_estimate = self._seen_estimate, seen.estimate()
        return max(0.0, self._seen_estimate - before)
