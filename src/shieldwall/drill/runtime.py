"""What every drill traffic generator runs on: bounds it stops at, a pacer, and injectable I/O.

Every scenario and visitor population is bounded twice, by a request count and by seconds (`Bounds`),
and spends a `Budget` built from them: a loop asks `take()` before each request and stops when it says
no. Budgets nest, so a composite (pulse waves) can hand its parts a budget that is also charged to its
own. `Pacer` spreads requests at a fixed rate without ever bursting to catch up.

`Runtime` carries the I/O: the clock, `sleep`, and a factory for sessions (client.Session on a real
run). Tests swap in a FakeClock, a sleep that advances it and sessions that answer at once, so the
loops' bounds are checked without sockets or waiting.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from shieldwall.core.clock import Clock, SystemClock
from shieldwall.drill.client import Response, Session, Target

GRACE: Final = 1.0  # seconds a request in flight at the deadline may still take before it is cancelled


@dataclass(frozen=True)
class Bounds:
    """A run stops after `max_requests` requests or `max_seconds` seconds, whichever comes first."""

    max_requests: int
    max_seconds: float

    def __post_init__(self) -> None:
        if self.max_requests < 0 or not self.max_seconds >= 0:
            raise ValueError("bounds must not be negative")


class Budget:
    """What is left of some Bounds since the budget was made; charged to `within` too, if given."""

    def __init__(self, bounds: Bounds, clock: Clock, within: Budget | None = None) -> None:
        self._clock = clock
        self._within = within
        self.deadline = clock.monotonic() + bounds.max_seconds
        if within is not None:
            self.deadline = min(self.deadline, within.deadline)
        self.left = bounds.max_requests
        self.taken = 0

    def expired(self) -> bool:
        return (
            self.left <= 0
            or self._clock.monotonic() >= self.deadline
            or (self._within is not None and self._within.expired())
        )

    def take(self) -> bool:
        """Spend one request; False (and nothing spent) when the budget is used up or out of time."""
        if self.expired() or (self._within is not None and not self._within.take()):
            return False
        self.left -= 1
        self.taken += 1
        return True

    def seconds_left(self) -> float:
        return max(0.0, self.deadline - self._clock.monotonic())


class Pacer:
    """Hands out send times `1/rate` apart. A caller that was idle does not get a burst to catch up:
    the next slot is never earlier than now."""

    def __init__(self, rate: float, clock: Clock) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive")
        self._interval = 1.0 / rate
        self._clock = clock
        self._next = clock.monotonic()

    def reserve(self) -> float:
        """Seconds to wait before sending the request that takes the next slot."""
        now = self._clock.monotonic()
        slot = max(now, self._next)
        self._next = slot + self._interval
        return slot - now


class Requester(Protocol):
    """What traffic generators need from a connection: client.Session is one."""

    async def request(
        self, method: str, target: str, headers: Sequence[tuple[str, str]] = (), body: bytes = b""
    ) -> Response: ...

    async def close(self) -> None: ...


# (kind, source address or None) → a session labelled `kind`, bound to that source
SessionFactory = Callable[[str, str | None], Requester]


@dataclass
class Runtime:
    """The I/O a drill runs on. `target` is where traffic goes (already checked to be loopback)."""

    target: Target
    open_session: SessionFactory
    clock: Clock = field(default_factory=SystemClock)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    @classmethod
    def real(cls, target: Target, *, timeout: float = 10.0) -> Runtime:
        """Real sessions to `target`, each request bounded by `timeout` seconds."""

        def open_session(kind: str, source: str | None) -> Requester:
            return Session(target, kind=kind, source=source, timeout=timeout)

        return cls(target, open_session)

    async def rest(self, seconds: float, budget: Budget) -> None:
        """Sleep `seconds`, but never past the budget's deadline."""
        pause = min(seconds, budget.seconds_left())
        if pause > 0:
            await self.sleep(pause)


async def run_within(budget: Budget, jobs: Iterable[Coroutine[Any, Any, None]], grace: float = GRACE) -> bool:
    """Run `jobs` together until they end, or cancel what is left `grace` s after the budget's deadline
    (a request in flight then is abandoned). Whether they all ended by themselves. A job that fails
    stops the others and its exception is raised: a bug in a drill must not look like a result."""
    tasks = [asyncio.ensure_future(job) for job in jobs]
    if not tasks:
        return True
    timeout = budget.seconds_left() + grace
    try:
        done, pending = await asyncio.wait(tasks, timeout=timeout, return_when=asyncio.FIRST_EXCEPTION)
    finally:  # on time, on a failure, or when the caller itself is cancelled
        for task in tasks:
            task.cancel()
    if pending:
        await asyncio.wait(pending)
    for task in done:
        error = task.exception()
        if error is not None:
            raise error
    return all(not task.cancelled() for task in tasks)
