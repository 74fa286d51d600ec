"""The origin's door: admit a request now, queue it by priority with a deadline, or shed it (503).

Rules, in the order they apply to an arriving request of class p (see `Priority`):

1. Admitted at once if fewer than `limit` requests are at the origin and p's *slot share* allows it.
   Slot shares reserve part of the limit for the higher classes: requests of class p or any lower class
   together hold at most `slot_shares[p] * limit` slots (defaults: NORMAL and SUSPICIOUS together 80%,
   SUSPICIOUS alone 25%). So when attackers fill their share with slow requests, a critical request
   still finds a slot without waiting for one of theirs to finish.
2. Otherwise queued, FIFO within its class, while the queue holds fewer than `queue_shares[p] *
   queue_capacity` waiters (defaults: NORMAL up to half the queue, SUSPICIOUS a tenth): once the origin
   is saturated the lowest classes are shed at once rather than queued behind everyone else.
3. Past its share, it takes the place of the newest waiter of the lowest class below its own, which is
   shed (the newest has waited least); with no such waiter it is shed itself.

A waiter is admitted when a slot frees up (`release`), highest class first; it is answered 503 when its
class's `queue_timeouts` deadline passes (`expire`). Every ticket ends exactly once: released after being
admitted, shed, expired or cancelled. All operations are O(1) except `expire` and `release`, which are
O(1) per ticket they return; memory is bounded by the queue capacity and the limit.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from enum import Enum
from itertools import pairwise
from math import ceil

from shieldwall.admission.limits import Limit
from shieldwall.admission.priority import PRIORITIES, Priority

RETRY_AFTER_MIN = 1
RETRY_AFTER_MAX = 30
_RATE_BUCKET = 1.0  # seconds over which completions are counted for the throughput estimate

PerClass = tuple[float, float, float, float]  # indexed by Priority


class TicketState(Enum):
    QUEUED = "queued"
    ADMITTED = "admitted"  # at the origin; must be released
    RELEASED = "released"
    SHED = "shed"  # answer 503 + Retry-After
    EXPIRED = "expired"  # waited past its deadline: answer 503 + Retry-After
    CANCELLED = "cancelled"  # its client left while it waited


@dataclass(slots=True, eq=False)
class Ticket:
    """One request's passage through the door; an opaque handle for the data plane.

    `context` is the data plane's own (e.g. the exchange to resume when a queued ticket is admitted); the
    controller never looks at it. Compared and hashed by identity.
    """

    priority: Priority
    arrived: float
    context: object = None
    state: TicketState = TicketState.QUEUED
    deadline: float = 0.0  # when a queued ticket expires
    admitted_at: float = 0.0
    retry_after: int = 0  # seconds, set when SHED or EXPIRED


@dataclass(frozen=True, slots=True)
class AdmissionSettings:
    """Per-class settings are tuples indexed by `Priority` (CRITICAL, CLEARED, NORMAL, SUSPICIOUS)."""

    queue_capacity: int = 1000
    queue_timeouts: PerClass = (10.0, 5.0, 3.0, 1.0)  # seconds a request of each class may wait
    queue_shares: PerClass = (1.0, 1.0, 0.5, 0.1)  # queue fill up to which each class may still join
    slot_shares: PerClass = (1.0, 1.0, 0.8, 0.25)  # share of the limit a class and those below may hold

    def __post_init__(self) -> None:
        if self.queue_capacity < 0:
            raise ValueError("queue_capacity must not be negative")
        if any(t <= 0 for t in self.queue_timeouts):
            raise ValueError("queue timeouts must be positive")
        for name, shares in (("queue_shares", self.queue_shares), ("slot_shares", self.slot_shares)):
            if shares[0] != 1.0 or any(not 0 < s <= 1 for s in shares):
                raise ValueError(f"{name}: CRITICAL's must be 1, every other in (0, 1]")
            if any(lower > higher for higher, lower in pairwise(shares)):
                raise ValueError(f"{name}: a lower class may not have a larger share than a higher one")


@dataclass(frozen=True, slots=True)
class AdmissionSnapshot:
    """For telemetry. Per-class tuples are indexed by `Priority`; counters only grow."""

    limit: int
    in_flight: int
    in_flight_by_class: tuple[int, ...]
    queued: tuple[int, ...]
    admitted: tuple[int, ...]  # at once or from the queue
    shed: tuple[int, ...]  # at once or evicted from the queue
    expired: tuple[int, ...]
    cancelled: tuple[int, ...]
    throughput: float  # requests/s the origin has been completing


class AdmissionController:
    def __init__(self, limit: Limit, settings: AdmissionSettings | None = None) -> None:
        self.settings = settings = settings or AdmissionSettings()
        self._limit = limit
        self._queues: tuple[OrderedDict[Ticket, None], ...] = tuple(OrderedDict() for _ in PRIORITIES)
        self._queued = 0
        self._timeouts = settings.queue_timeouts
        cap = settings.queue_capacity
        self._queue_room = tuple(int(share * cap) for share in settings.queue_shares)
        # _held[p]: tickets at the origin of class p *or lower*; _held[0] is the total in flight, and
        # _held[4] stays 0 so that _held[p] - _held[p + 1] is class p's own count.
        self._held = [0, 0, 0, 0, 0]
        self._slot_caps = [0, 0, 0, 0]
        self._caps_for = 0
        self._update_caps()
        self._admitted = [0, 0, 0, 0]
        self._shed = [0, 0, 0, 0]
        self._expired = [0, 0, 0, 0]
        self._cancelled = [0, 0, 0, 0]
        # throughput: completions counted over buckets of _RATE_BUCKET seconds, smoothed
        self._rate = 0.0
        self._rate_count = 0
        self._rate_since: float | None = None

    # ---------------------------------------------------------------- the data plane's calls

    def try_admit(
        self, priority: Priority, now: float, context: object = None
    ) -> tuple[Ticket, Ticket | None]:
        """A request wants the origin. Returns its ticket and, rarely, a waiter it displaced.

        The ticket's state is ADMITTED (go to the origin now; `release` it when done), QUEUED (hold the
        request; it comes back from `release` when admitted, or from `expire`) or SHED (answer 503 with
        its `retry_after`). The second item is a waiter evicted to make room, now SHED: answer it 503 too.
        """
        ticket = Ticket(priority, now, context)
        if self._can_hold(priority):
            self._hold(ticket, now)
            return ticket, None
        evicted = None
        if self._queued >= self._queue_room[priority]:
            evicted = self._evict_below(priority, now)
            if evicted is None:
                self._settle(ticket, TicketState.SHED, now)
                return ticket, None
        ticket.deadline = now + self._timeouts[priority]
        self._queues[priority][ticket] = None
        self._queued += 1
        return ticket, evicted

    def release(self, ticket: Ticket, latency: float | None, ok: bool, now: float) -> list[Ticket]:
        """The origin is done with an admitted request; returns the waiters now admitted, in order.

        `latency`: seconds from admission to the origin's response head, or None when nothing was
        measured (the client left first); `ok=False` when the origin failed in a way that signals
        overload (timeout, refused connection, 503/504), which cuts the limit whatever the latency.
        """
        if ticket.state is not TicketState.ADMITTED:
            raise ValueError(f"release of a ticket that is {ticket.state.value}, not admitted")
        ticket.state = TicketState.RELEASED
        held = self._held
        if not ok or latency is not None:
            self._limit.on_sample(latency or 0.0, held[0], not ok, now)
        for p in range(ticket.priority + 1):
            held[p] -= 1
        self._count_completion(now)
        if self._limit.limit != self._caps_for:
            self._update_caps()
        return self._admit_waiters(now) if self._queued else []

    def waiting(self) -> list[Ticket]:
        """The queued tickets, highest class first, FIFO within a class (a copy: the caller may cancel
        some while it goes through them)."""
        return [ticket for queue in self._queues for ticket in queue]

    def expire(self, now: float) -> list[Ticket]:
        """Waiters whose deadline has passed, now EXPIRED (highest class first, FIFO within a class):
        answer them 503 with their `retry_after`. Called from the data plane's sweeper."""
        expired: list[Ticket] = []
        if not self._queued:
            return expired
        for queue in self._queues:
            while queue:
                ticket = next(iter(queue))
                if ticket.deadline > now:
                    break  # one timeout per class: deadlines within a queue are in FIFO order
                del queue[ticket]
                self._queued -= 1
                expired.append(ticket)
        for ticket in expired:
            self._settle(ticket, TicketState.EXPIRED, now)
        return expired

    def cancel(self, ticket: Ticket) -> bool:
        """The client of a queued request left: forget it. False (nothing done) if it was not queued;
        an admitted ticket is given back with `release` instead."""
        if ticket.state is not TicketState.QUEUED:
            return False
        del self._queues[ticket.priority][ticket]
        self._queued -= 1
        ticket.state = TicketState.CANCELLED
        self._cancelled[ticket.priority] += 1
        return True

    def retry_after(self, now: float) -> int:
        """Whole seconds until the queue in front of a newcomer should have drained, within 1..30:
        the queue's length over the origin's recent throughput; 30 while nothing completes (a stalled
        origin, or none measured yet) and 1 with nobody queued."""
        if not self._queued:
            return RETRY_AFTER_MIN
        rate = self._throughput(now)
        if rate <= 0:
            return RETRY_AFTER_MAX
        return max(RETRY_AFTER_MIN, min(RETRY_AFTER_MAX, ceil(self._queued / rate)))

    # ---------------------------------------------------------------- telemetry

    @property
    def limit(self) -> int:
        return self._limit.limit

    @property
    def in_flight(self) -> int:
        return self._held[0]

    @property
    def queued(self) -> int:
        return self._queued

    def snapshot(self, now: float) -> AdmissionSnapshot:
        held = self._held
        return AdmissionSnapshot(
            limit=self._limit.limit,
            in_flight=held[0],
            in_flight_by_class=tuple(held[p] - held[p + 1] for p in PRIORITIES),
            queued=tuple(len(queue) for queue in self._queues),
            admitted=tuple(self._admitted),
            shed=tuple(self._shed),
            expired=tuple(self._expired),
            cancelled=tuple(self._cancelled),
            throughput=self._throughput(now),
        )

    # ---------------------------------------------------------------- internals

    def _can_hold(self, priority: int) -> bool:
        """A slot is free for this class: under the limit, and under the slot share of this class and
        of every class between it and CRITICAL (admitting it counts against all of them). So if a class
        may not enter, no lower class may either."""
        held, caps = self._held, self._slot_caps
        for p in range(priority + 1):  # noqa: SIM110 (a loop, not all(): no generator per request)
            if held[p] >= caps[p]:
                return False
        return True

    def _hold(self, ticket: Ticket, now: float) -> None:
        ticket.state = TicketState.ADMITTED
        ticket.admitted_at = now
        held = self._held
        for p in range(ticket.priority + 1):
            held[p] += 1
        self._admitted[ticket.priority] += 1

    def _admit_waiters(self, now: float) -> list[Ticket]:
        admitted: list[Ticket] = []
        for priority, queue in enumerate(self._queues):
            while queue:
                if not self._can_hold(priority):
                    return admitted  # and no lower class can enter either
                ticket, _ = queue.popitem(last=False)
                self._queued -= 1
                self._hold(ticket, now)
                admitted.append(ticket)
        return admitted

    def _evict_below(self, priority: int, now: float) -> Ticket | None:
        """Shed the newest waiter of the lowest class below `priority`, if there is one."""
        for lower in range(len(self._queues) - 1, priority, -1):
            queue = self._queues[lower]
            if queue:
                ticket, _ = queue.popitem(last=True)
                self._queued -= 1
                self._settle(ticket, TicketState.SHED, now)
                return ticket
        return None

    def _settle(self, ticket: Ticket, state: TicketState, now: float) -> None:
        """The ticket ends without reaching the origin: it is shed or expired, and told when to retry."""
        ticket.state = state
        ticket.retry_after = self.retry_after(now)
        (self._shed if state is TicketState.SHED else self._expired)[ticket.priority] += 1

    def _update_caps(self) -> None:
        limit = self._caps_for = self._limit.limit
        self._slot_caps = [max(1, int(share * limit)) for share in self.settings.slot_shares]

    def _count_completion(self, now: float) -> None:
        if self._rate_since is None:
            self._rate_since = now
        self._rate_count += 1
        elapsed = now - self._rate_since
        if elapsed >= _RATE_BUCKET:
            rate = self._rate_count / elapsed
            self._rate = 0.5 * (self._rate + rate) if self._rate else rate
            self._rate_count = 0
            self._rate_since = now

    def _throughput(self, now: float) -> float:
        """Completions per second; falls once a bucket stays open twice its length (a stalled origin)."""
        if self._rate_since is None:
            return 0.0
        elapsed = now - self._rate_since
        current = self._rate_count / elapsed if elapsed > 0 else 0.0
        if not self._rate:
            return current  # the first bucket is still open
        if elapsed >= 2 * _RATE_BUCKET:
            return min(self._rate, current)
        return self._rate
