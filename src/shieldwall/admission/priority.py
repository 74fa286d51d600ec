"""The four priority classes of requests at the origin's door."""

from __future__ import annotations

from enum import IntEnum


class Priority(IntEnum):
    """Who goes first when the origin is saturated: a lower value is served first and shed last.

    CRITICAL    operator-marked critical routes, and logged-in users (a session cookie the operator names)
    CLEARED     visitors holding a clearance, or a returning-visitor token issued in peacetime
    NORMAL      everyone else
    SUSPICIOUS  clients the shield already distrusts; the first to be shed

    The values index per-class tables (queues, counters, settings tuples), so they are 0..3 in this order.
    """

    CRITICAL = 0
    CLEARED = 1
    NORMAL = 2
    SUSPICIOUS = 3


PRIORITIES = tuple(Priority)


def classify(*, suspicious: bool, critical_route: bool, logged_in: bool, cleared: bool) -> Priority:
    """The class of one request, from what the data plane knows about it.

    Suspicion comes first: a flagged client's session cookie or token may be stolen or replayed, and an
    operator-marked route (a login page, a checkout) is exactly what a flood aims at, so neither lifts it.
    Then the operator's word (a critical route, a logged-in user) before the shield's own (a clearance or a
    returning-visitor token), before nothing at all.
    """
    if suspicious:
        return Priority.SUSPICIOUS
    if critical_route or logged_in:
        return Priority.CRITICAL
    if cleared:
        return Priority.CLEARED
    return Priority.NORMAL
