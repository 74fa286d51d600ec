"""Random interleavings of arrivals, releases (healthy, slow, failed), expiries and cancellations.

The books must balance after every step: in flight and queued are exactly the tickets in those states,
never over the limit (at each admission) or the queue's capacity; every ticket ends exactly once; a
freed slot always goes to the highest waiting class, FIFO within it; no waiter is left waiting while a
slot is free for it."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from shieldwall.admission.controller import AdmissionController, AdmissionSettings, Ticket, TicketState
from shieldwall.admission.limits import AimdLimit
from shieldwall.admission.priority import Priority

QUEUED, ADMITTED, RELEASED = TicketState.QUEUED, TicketState.ADMITTED, TicketState.RELEASED
SHED, EXPIRED, CANCELLED = TicketState.SHED, TicketState.EXPIRED, TicketState.CANCELLED
ENDS = {RELEASED, SHED, EXPIRED, CANCELLED}

gaps = st.floats(min_value=0, max_value=1.5)
shares = st.lists(st.floats(min_value=0.05, max_value=1.0), min_size=3, max_size=3).map(
    lambda s: (1.0, *sorted(s, reverse=True))
)


class Door(RuleBasedStateMachine):
    @initialize(
        initial=st.integers(1, 8),
        capacity=st.integers(0, 6),
        queue_shares=shares,
        slot_shares=shares,
        timeouts=st.lists(st.floats(min_value=0.1, max_value=3), min_size=4, max_size=4),
    )
    def open_door(
        self,
        initial: int,
        capacity: int,
        queue_shares: tuple[float, float, float, float],
        slot_shares: tuple[float, float, float, float],
        timeouts: list[float],
    ) -> None:
        self.limit = AimdLimit(latency_target=0.1, initial=initial, min_limit=1, max_limit=8, smoothing=0.5)
        self.settings = AdmissionSettings(
            queue_capacity=capacity,
            queue_timeouts=(timeouts[0], timeouts[1], timeouts[2], timeouts[3]),
            queue_shares=queue_shares,
            slot_shares=slot_shares,
        )
        self.ctl = AdmissionController(self.limit, self.settings)
        self.now = 0.0
        self.state: dict[Ticket, TicketState] = {}  # every ticket ever issued, as we expect it to be
        self.passed_admission: dict[Ticket, bool] = {}
        self.arrivals = 0

    # ---------------------------------------------------------------- helpers

    def tickets_in(self, state: TicketState) -> list[Ticket]:
        return [t for t, s in self.state.items() if s is state]

    def moved(self, ticket: Ticket, before: TicketState, after: TicketState) -> None:
        assert self.state[ticket] is before, f"{ticket} went {self.state[ticket]} -> {after}"
        assert ticket.state is after
        self.state[ticket] = after
        if after is ADMITTED:
            self.passed_admission[ticket] = True

    def held_from(self, priority: int) -> int:
        """Tickets at the origin of this class or any lower one."""
        return sum(1 for t in self.tickets_in(ADMITTED) if t.priority >= priority)

    def cap(self, priority: int) -> int:
        return max(1, int(self.settings.slot_shares[priority] * self.ctl.limit))

    def can_hold(self, priority: int) -> bool:
        return all(self.held_from(q) < self.cap(q) for q in range(priority + 1))

    def check_admitted(self, admitted: list[Ticket]) -> None:
        """Just admitted: within the limit and the shares, highest class first, FIFO within a class."""
        if not admitted:
            return
        assert 0 < self.ctl.in_flight <= self.ctl.limit
        for ticket in admitted:
            assert all(self.held_from(q) <= self.cap(q) for q in range(ticket.priority + 1))
        order = [(t.priority, t.context) for t in admitted]
        assert order == sorted(order), order  # context is the arrival number
        lowest_admitted = max(t.priority for t in admitted)
        assert not any(t.priority < lowest_admitted for t in self.tickets_in(QUEUED))

    # ---------------------------------------------------------------- rules

    @rule(priority=st.sampled_from(Priority), gap=gaps)
    def arrive(self, priority: Priority, gap: float) -> None:
        self.now += gap
        self.arrivals += 1
        ticket, evicted = self.ctl.try_admit(priority, self.now, self.arrivals)
        assert ticket.state in (ADMITTED, QUEUED, SHED)
        self.state[ticket] = ticket.state
        self.passed_admission[ticket] = ticket.state is ADMITTED
        if ticket.state is SHED:
            assert 1 <= ticket.retry_after <= 30 and evicted is None
        if evicted is not None:
            assert ticket.state is QUEUED and evicted.priority > priority
            assert not any(t.priority > evicted.priority for t in self.tickets_in(QUEUED))
            self.moved(evicted, QUEUED, SHED)
        if ticket.state is QUEUED:
            assert ticket.deadline == self.now + self.settings.queue_timeouts[priority]
        self.check_admitted([ticket] if ticket.state is ADMITTED else [])

    @precondition(lambda self: any(s is ADMITTED for s in self.state.values()))
    @rule(
        data=st.data(),
        latency=st.one_of(st.none(), st.floats(min_value=0, max_value=0.3)),
        ok=st.booleans(),
        gap=gaps,
    )
    def release(self, data: st.DataObject, latency: float | None, ok: bool, gap: float) -> None:
        self.now += gap
        ticket = data.draw(st.sampled_from(self.tickets_in(ADMITTED)))
        admitted = self.ctl.release(ticket, latency, ok, self.now)
        self.moved(ticket, ADMITTED, RELEASED)
        for waiter in admitted:
            self.moved(waiter, QUEUED, ADMITTED)
            assert waiter.admitted_at == self.now
        self.check_admitted(admitted)

    @rule(gap=gaps)
    def expire(self, gap: float) -> None:
        self.now += gap
        for ticket in self.ctl.expire(self.now):
            assert ticket.deadline <= self.now and 1 <= ticket.retry_after <= 30
            self.moved(ticket, QUEUED, EXPIRED)
        assert all(t.deadline > self.now for t in self.tickets_in(QUEUED))

    @precondition(lambda self: bool(self.state))
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        ticket = data.draw(st.sampled_from(list(self.state)))
        was = self.state[ticket]
        assert self.ctl.cancel(ticket) is (was is QUEUED)
        if was is QUEUED:
            self.moved(ticket, QUEUED, CANCELLED)
        else:
            assert ticket.state is was

    # ---------------------------------------------------------------- invariants

    @invariant()
    def books_balance(self) -> None:
        if not hasattr(self, "ctl"):
            return
        ctl = self.ctl
        assert all(t.state is s for t, s in self.state.items())
        assert ctl.in_flight == len(self.tickets_in(ADMITTED)) >= 0
        assert ctl.queued == len(self.tickets_in(QUEUED)) <= self.settings.queue_capacity
        assert 1 <= ctl.limit <= 8
        waiting = self.tickets_in(QUEUED)
        if waiting:
            assert not self.can_hold(min(t.priority for t in waiting)), "a waiter could have gone"
        snap = ctl.snapshot(self.now)
        for p in Priority:
            mine = [t for t in self.state if t.priority is p]
            assert snap.admitted[p] == sum(self.passed_admission[t] for t in mine)
            assert snap.shed[p] == sum(self.state[t] is SHED for t in mine)
            assert snap.expired[p] == sum(self.state[t] is EXPIRED for t in mine)
            assert snap.cancelled[p] == sum(self.state[t] is CANCELLED for t in mine)
            assert snap.queued[p] == sum(self.state[t] is QUEUED for t in mine)
            assert snap.in_flight_by_class[p] == sum(self.state[t] is ADMITTED for t in mine)

    def teardown(self) -> None:
        """Everyone leaves: every ticket ends, exactly once, in one of the four ends."""
        if not hasattr(self, "ctl"):
            return
        while admitted := self.tickets_in(ADMITTED):
            self.now += 0.01
            for waiter in self.ctl.release(admitted[0], 0.05, True, self.now):
                self.moved(waiter, QUEUED, ADMITTED)
            self.moved(admitted[0], ADMITTED, RELEASED)
        for ticket in self.ctl.expire(self.now + 100):
            self.moved(ticket, QUEUED, EXPIRED)
        assert all(s in ENDS for s in self.state.values())
        assert self.ctl.in_flight == 0 and self.ctl.queued == 0


Door.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
TestDoor = Door.TestCase
