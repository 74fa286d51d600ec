"""Request coalescing: many identical misses, one origin fetch.

The first miss for a key leads a Flight (it fetches from the origin); identical misses meanwhile follow it.
"Identical" is judged with the Vary known when the flight started (the latest stored response's): a flight
started without one (nothing stored yet) takes any request for its primary key, and its response's Vary then
decides which followers it can answer. So each follower's request fields are kept with it. The flight keeps
its own Vary rather than looking it up again, because entries (and with them the stored Vary) may be
evicted while it is under way.

Followers are the data plane's own objects (its continuations), held as they are and matched by identity.
They are bounded per flight and in total, so a flood of misses cannot grow the table without limit.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

from shieldwall.cache.request import SecondaryKey, secondary_key

W = TypeVar("W")
RequestFields = Sequence[tuple[bytes, bytes]]


class Flight(Generic[W]):
    """One origin fetch in progress and who waits on it. Ended exactly once (Cache.finish/fail/abandon)."""

    __slots__ = ("done", "followers", "leader_fields", "primary", "secondary", "started", "vary")

    def __init__(
        self,
        primary: bytes,
        vary: tuple[bytes, ...] | None,
        leader_fields: RequestFields,
        started: float,
    ) -> None:
        self.primary = primary
        self.vary = vary  # None: not known when the flight started
        self.secondary: SecondaryKey | None = None if vary is None else secondary_key(vary, leader_fields)
        self.leader_fields = leader_fields  # the leader's request fields: its response's Vary applies to them
        self.started = started
        self.followers: list[tuple[W, RequestFields]] = []
        self.done = False

    def matches(self, fields: RequestFields) -> bool:
        return self.vary is None or secondary_key(self.vary, fields) == self.secondary


class Coalescer(Generic[W]):
    __slots__ = ("_flights", "count", "followers", "max_followers", "max_per_flight")

    def __init__(self, max_per_flight: int, max_followers: int) -> None:
        self.max_per_flight = max_per_flight
        self.max_followers = max_followers
        self.followers = 0  # waiting, all flights together
        self.count = 0  # flights under way
        self._flights: dict[bytes, list[Flight[W]]] = {}  # by primary key: one per variant being fetched

    def find(self, primary: bytes, fields: RequestFields) -> Flight[W] | None:
        for flight in self._flights.get(primary, ()):
            if flight.matches(fields):
                return flight
        return None

    def lead(
        self, primary: bytes, vary: tuple[bytes, ...] | None, leader_fields: RequestFields, now: float
    ) -> Flight[W]:
        flight: Flight[W] = Flight(primary, vary, leader_fields, now)
        self._flights.setdefault(primary, []).append(flight)
        self.count += 1
        return flight

    def follow(self, flight: Flight[W], waiter: W, fields: RequestFields) -> bool:
        """Add a follower; False (nothing added) when the flight or the table is full."""
        if len(flight.followers) >= self.max_per_flight or self.followers >= self.max_followers:
            return False
        flight.followers.append((waiter, fields))
        self.followers += 1
        return True

    def leave(self, flight: Flight[W], waiter: W) -> bool:
        """A follower stops waiting (its client left, or it waited too long). False if it was not waiting."""
        for index, (follower, _) in enumerate(flight.followers):
            if follower is waiter:
                del flight.followers[index]
                self.followers -= 1
                return True
        return False

    def end(self, flight: Flight[W]) -> list[tuple[W, RequestFields]]:
        """The flight is over: forget it and hand back its followers (none if it had already ended)."""
        if flight.done:
            return []
        flight.done = True
        self.count -= 1
        siblings = self._flights[flight.primary]
        siblings.remove(flight)
        if not siblings:
            del self._flights[flight.primary]
        followers = flight.followers
        flight.followers = []
        self.followers -= len(followers)
        return followers
