"""The origin's door: who is admitted, queued or shed, in which order, and for how long they may wait."""

from __future__ import annotations

import pytest

from shieldwall.admission.controller import (
    AdmissionController,
    AdmissionSettings,
    Ticket,
    TicketState,
)
from shieldwall.admission.limits import AimdLimit, FixedLimit
from shieldwall.admission.priority import Priority, classify

CRITICAL, CLEARED, NORMAL, SUSPICIOUS = Priority
ADMITTED, QUEUED, SHED = TicketState.ADMITTED, TicketState.QUEUED, TicketState.SHED

# No class reserves: the tests of queue order see only the queue's rules.
OPEN = (1.0, 1.0, 1.0, 1.0)


def door(limit: int = 2, capacity: int = 10, **kwargs: object) -> AdmissionController:
    settings = AdmissionSettings(
        queue_capacity=capacity,
        queue_shares=kwargs.pop("queue_shares", OPEN),  # type: ignore[arg-type]
        slot_shares=kwargs.pop("slot_shares", OPEN),  # type: ignore[arg-type]
        **kwargs,  # type: ignore[arg-type]
    )
    return AdmissionController(FixedLimit(limit), settings)


def admit(ctl: AdmissionController, priority: Priority, now: float = 0.0, context: object = None) -> Ticket:
    ticket, evicted = ctl.try_admit(priority, now, context)
    assert evicted is None
    return ticket


def fill(ctl: AdmissionController, now: float = 0.0) -> list[Ticket]:
    held = [admit(ctl, NORMAL, now) for _ in range(ctl.limit)]
    assert all(t.state is ADMITTED for t in held)
    return held


def test_under_the_limit_everyone_goes_straight_to_the_origin() -> None:
    ctl = door(limit=4)
    tickets = [admit(ctl, p, 1.0) for p in Priority]
    assert [t.state for t in tickets] == [ADMITTED] * 4
    assert ctl.in_flight == 4 and tickets[0].admitted_at == 1.0


def test_a_saturated_origin_serves_the_highest_class_first_and_fifo_within_a_class() -> None:
    ctl = door(limit=1)
    (held,) = fill(ctl)
    arrivals = [SUSPICIOUS, NORMAL, CRITICAL, CLEARED, NORMAL, CRITICAL, SUSPICIOUS, CLEARED]
    waiting = [admit(ctl, p, 1.0 + i / 100, context=i) for i, p in enumerate(arrivals)]
    assert all(t.state is QUEUED for t in waiting)
    order = []
    ticket = held
    for step in range(len(arrivals)):
        (ticket,) = ctl.release(ticket, 0.05, True, 2.0 + step)
        order.append(ticket.context)
    assert order == [2, 5, 3, 7, 1, 4, 0, 6]
    assert ctl.queued == 0 and ctl.in_flight == 1


def test_a_released_slot_goes_to_the_waiter_and_the_context_comes_back() -> None:
    ctl = door(limit=1)
    (held,) = fill(ctl)
    exchange = object()
    waiter = admit(ctl, NORMAL, 1.0, context=exchange)
    assert ctl.release(held, 0.05, True, 2.0) == [waiter]
    assert waiter.state is ADMITTED and waiter.context is exchange and waiter.admitted_at == 2.0
    assert held.state is TicketState.RELEASED


def test_a_full_queue_sheds_equal_and_lower_arrivals() -> None:
    ctl = door(limit=1, capacity=2)
    fill(ctl)
    admit(ctl, CLEARED)
    admit(ctl, CLEARED)
    for priority in (CLEARED, NORMAL, SUSPICIOUS):
        shed = admit(ctl, priority)
        assert shed.state is SHED and 1 <= shed.retry_after <= 30
    assert ctl.snapshot(0.0).shed == (0, 1, 1, 1)


def test_a_higher_arrival_evicts_the_newest_waiter_of_the_lowest_class() -> None:
    ctl = door(limit=1, capacity=4)
    fill(ctl)
    old_suspicious = admit(ctl, SUSPICIOUS, context="old")
    new_suspicious = admit(ctl, SUSPICIOUS, context="new")
    normal = admit(ctl, NORMAL)
    cleared = admit(ctl, CLEARED)
    critical, evicted = ctl.try_admit(CRITICAL, 1.0)
    assert critical.state is QUEUED and evicted is new_suspicious and evicted.state is SHED
    assert evicted.retry_after >= 1
    _, evicted = ctl.try_admit(CLEARED, 1.0)
    assert evicted is old_suspicious
    _, evicted = ctl.try_admit(CLEARED, 1.0)
    assert evicted is normal
    shed, evicted = ctl.try_admit(CLEARED, 1.0)  # only CLEARED and CRITICAL left: nothing lower
    assert shed.state is SHED and evicted is None
    assert cleared.state is QUEUED and ctl.queued == 4


def test_the_lowest_classes_are_shed_at_once_past_their_share_of_the_queue() -> None:
    ctl = door(limit=1, capacity=10, queue_shares=(1.0, 1.0, 0.5, 0.1))
    fill(ctl)
    assert admit(ctl, SUSPICIOUS).state is QUEUED  # an empty queue takes anyone
    assert admit(ctl, SUSPICIOUS).state is SHED  # past a tenth of the queue
    normals = [admit(ctl, NORMAL) for _ in range(4)]
    assert all(t.state is QUEUED for t in normals) and ctl.queued == 5
    # at half the queue, a NORMAL arrival takes the SUSPICIOUS waiter's place, then is shed
    bumped, evicted = ctl.try_admit(NORMAL, 0.0)
    assert bumped.state is QUEUED and evicted is not None and evicted.priority is SUSPICIOUS
    assert admit(ctl, NORMAL).state is SHED
    # the higher classes still queue, up to the whole capacity
    assert [admit(ctl, CLEARED).state for _ in range(5)] == [QUEUED] * 5
    assert ctl.queued == 10


def test_the_reserved_slots_keep_critical_flowing_while_attackers_fill_theirs() -> None:
    ctl = door(limit=10, slot_shares=(1.0, 1.0, 0.8, 0.3))
    suspicious = [admit(ctl, SUSPICIOUS) for _ in range(4)]
    assert [t.state for t in suspicious] == [ADMITTED] * 3 + [QUEUED]  # 30% of 10
    normal = [admit(ctl, NORMAL) for _ in range(6)]
    assert [t.state for t in normal] == [ADMITTED] * 5 + [QUEUED]  # NORMAL and below: 80%
    assert ctl.in_flight == 8
    assert admit(ctl, CRITICAL).state is ADMITTED
    assert admit(ctl, CLEARED).state is ADMITTED
    assert ctl.in_flight == 10 and admit(ctl, CRITICAL).state is QUEUED


def test_a_freed_slot_skips_a_class_over_its_share() -> None:
    ctl = door(limit=4, slot_shares=(1.0, 1.0, 1.0, 0.5))
    held = [admit(ctl, SUSPICIOUS) for _ in range(2)] + [admit(ctl, NORMAL) for _ in range(2)]
    waiting_suspicious = admit(ctl, SUSPICIOUS)
    waiting_normal = admit(ctl, NORMAL)
    # a NORMAL slot frees: SUSPICIOUS already holds its half, so the NORMAL waiter goes
    assert ctl.release(held[2], 0.05, True, 1.0) == [waiting_normal]
    assert ctl.release(held[0], 0.05, True, 1.0) == [waiting_suspicious]


def test_a_waiter_expires_at_its_class_deadline() -> None:
    ctl = door(limit=1, queue_timeouts=(10.0, 5.0, 2.0, 1.0))
    fill(ctl)
    waiters = {p: admit(ctl, p, 100.0) for p in Priority}
    assert ctl.expire(100.99) == []
    assert ctl.expire(101.0) == [waiters[SUSPICIOUS]]
    assert ctl.expire(105.0) == [waiters[CLEARED], waiters[NORMAL]]  # highest class first
    assert waiters[NORMAL].state is TicketState.EXPIRED and waiters[NORMAL].retry_after >= 1
    assert ctl.queued == 1 and waiters[CRITICAL].deadline == 110.0
    assert ctl.snapshot(105.0).expired == (0, 1, 1, 1)


def test_expiry_keeps_fifo_order_and_stops_at_the_first_waiter_still_in_time() -> None:
    ctl = door(limit=1, queue_timeouts=(10.0, 5.0, 2.0, 1.0))
    fill(ctl)
    first, second, third = (admit(ctl, NORMAL, now) for now in (0.0, 0.5, 1.0))
    assert ctl.expire(2.6) == [first, second]
    assert third.state is QUEUED


def test_cancel_removes_a_waiter_and_nothing_else() -> None:
    ctl = door(limit=1)
    (held,) = fill(ctl)
    leaving, staying = admit(ctl, NORMAL), admit(ctl, NORMAL)
    assert ctl.cancel(leaving)
    assert leaving.state is TicketState.CANCELLED and ctl.queued == 1
    assert not ctl.cancel(leaving)  # twice: nothing more happens
    assert not ctl.cancel(held)  # an admitted ticket is released, not cancelled
    assert ctl.release(held, 0.05, True, 1.0) == [staying]
    assert ctl.snapshot(1.0).cancelled == (0, 0, 1, 0)


def test_a_ticket_is_released_only_once_and_only_when_admitted() -> None:
    ctl = door(limit=1)
    (held,) = fill(ctl)
    waiter = admit(ctl, NORMAL)
    with pytest.raises(ValueError, match="queued"):
        ctl.release(waiter, 0.05, True, 1.0)
    ctl.release(held, 0.05, True, 1.0)
    with pytest.raises(ValueError, match="released"):
        ctl.release(held, 0.05, True, 1.0)
    assert ctl.in_flight == 1


def test_release_feeds_the_limit_and_a_larger_limit_admits_more_waiters() -> None:
    limit = AimdLimit(latency_target=0.1, initial=2, min_limit=1)
    ctl = AdmissionController(limit, AdmissionSettings(queue_capacity=10, slot_shares=OPEN))
    held = [admit(ctl, NORMAL) for _ in range(2)]
    waiters = [admit(ctl, NORMAL) for _ in range(3)]
    # slow start: this healthy sample raises the limit to 3, so the freed slot and the new one both go
    assert ctl.release(held[0], 0.02, True, 1.0) == waiters[:2]
    assert ctl.limit == 3 and ctl.in_flight == 3


def test_a_failure_cuts_the_limit_even_without_a_latency() -> None:
    limit = AimdLimit(latency_target=0.1, initial=10)
    ctl = AdmissionController(limit)
    ticket = admit(ctl, NORMAL)
    ctl.release(ticket, None, False, 1.0)
    assert ctl.limit == 9


def test_a_release_without_a_measurement_leaves_the_limit_alone() -> None:
    limit = AimdLimit(latency_target=0.1, initial=10)
    ctl = AdmissionController(limit)
    held = [admit(ctl, NORMAL) for _ in range(10)]
    ctl.release(held[0], None, True, 1.0)  # the client left before the origin answered
    assert ctl.limit == 10 and limit.smoothed_latency == 0.0


def test_retry_after_estimates_the_time_to_drain_the_queue() -> None:
    ctl = door(limit=10, capacity=1000)
    assert ctl.retry_after(0.0) == 1  # nothing queued
    held = fill(ctl)
    # the origin completes 100 requests a second for two seconds
    now = 0.0
    for _ in range(200):
        now += 0.01
        ticket = held.pop(0)
        ctl.release(ticket, 0.1, True, now)
        held.append(admit(ctl, NORMAL, now))
    assert ctl.snapshot(now).throughput == pytest.approx(100, rel=0.05)
    for _ in range(450):
        admit(ctl, CLEARED, now)
    assert ctl.retry_after(now) == 5  # 450 waiting at 100/s
    for _ in range(500):
        admit(ctl, CLEARED, now)
    assert ctl.retry_after(now) == 10
    # the origin stalls: no completion for 20 s, so the estimate goes to its ceiling
    assert ctl.retry_after(now + 20) == 30


def test_the_snapshot_counts_per_class() -> None:
    ctl = door(limit=2, capacity=1)
    a = admit(ctl, CRITICAL)
    admit(ctl, SUSPICIOUS)
    queued = admit(ctl, NORMAL)
    shed = admit(ctl, NORMAL)
    assert shed.state is SHED
    ctl.release(a, 0.05, True, 1.0)
    assert queued.state is ADMITTED
    snap = ctl.snapshot(1.0)
    assert snap.limit == 2 and snap.in_flight == 2
    assert snap.in_flight_by_class == (0, 0, 1, 1)
    assert snap.queued == (0, 0, 0, 0)
    assert snap.admitted == (1, 0, 1, 1)
    assert snap.shed == (0, 0, 1, 0)


def test_without_a_queue_a_saturated_origin_sheds_at_once() -> None:
    ctl = door(limit=1, capacity=0)
    fill(ctl)
    assert admit(ctl, CRITICAL).state is SHED


@pytest.mark.parametrize(
    "kwargs",
    [
        {"queue_capacity": -1},
        {"queue_timeouts": (1.0, 1.0, 0.0, 1.0)},
        {"queue_shares": (0.9, 0.9, 0.5, 0.1)},  # CRITICAL may always use the whole queue
        {"slot_shares": (1.0, 1.0, 0.0, 0.0)},
        {"slot_shares": (1.0, 0.5, 0.8, 0.1)},  # NORMAL may not hold more than CLEARED
    ],
)
def test_nonsense_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        AdmissionSettings(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("facts", "expected"),
    [
        ({}, NORMAL),
        ({"cleared": True}, CLEARED),
        ({"logged_in": True}, CRITICAL),
        ({"critical_route": True, "cleared": True}, CRITICAL),
        ({"suspicious": True, "critical_route": True, "logged_in": True, "cleared": True}, SUSPICIOUS),
    ],
)
def test_suspicion_outranks_every_claim_then_the_operators_word_then_the_shields(
    facts: dict[str, bool], expected: Priority
) -> None:
    known = {"suspicious": False, "critical_route": False, "logged_in": False, "cleared": False}
    assert classify(**(known | facts)) is expected


def test_retry_after_has_an_estimate_within_the_first_second() -> None:
    ctl = door(limit=10, capacity=1000)
    held = fill(ctl)
    for i in range(10):  # 10 completions in the first half second: 20/s
        ctl.release(held[i], 0.05, True, 0.05 * (i + 1))
    for _ in range(100):
        admit(ctl, NORMAL, 0.5)
    assert ctl.queued == 100 - 10 and ctl.retry_after(0.5) == 5  # 90 waiting at 20/s
