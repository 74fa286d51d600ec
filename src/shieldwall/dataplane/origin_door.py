"""Admission control wired to the data plane: which class a request is in, and what happens to the
exchanges the controller admits, sheds or lets expire (shieldwall.admission does the deciding).

An exchange takes a ticket in `ClientConnection._begin` just before it would take an origin connection.
An admitted ticket goes back in `ClientConnection._release` with the origin's time to the response head
(the AIMD limit's signal) and whether the origin coped (no 502/503/504); a queued one that expires is
answered 503 + Retry-After from the sweeper. A shed is not an offence: the visitor did nothing wrong.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shieldwall.admission.controller import AdmissionController, AdmissionSettings, Ticket, TicketState
from shieldwall.admission.limits import AimdLimit, FixedLimit, Limit
from shieldwall.admission.priority import Priority, classify
from shieldwall.admission.sessions import SessionTable
from shieldwall.config.admission_schema import Admission

if TYPE_CHECKING:
    from shieldwall.dataplane.exchange import Exchange

_OVERLOAD = frozenset((502, 503, 504))
_SET_COOKIE = b"set-cookie:"


class OriginDoor:
    def __init__(self, settings: Admission) -> None:
        limit: Limit = (
            FixedLimit(settings.fixed_limit)
            if settings.fixed_limit
            else AimdLimit(
                latency_target=settings.latency_target,
                initial=settings.initial_limit,
                min_limit=settings.min_limit,
                max_limit=settings.max_limit,
            )
        )
        timeouts = settings.queue_timeout
        self.controller = AdmissionController(
            limit,
            AdmissionSettings(
                queue_capacity=settings.queue_size,
                queue_timeouts=(timeouts.critical, timeouts.cleared, timeouts.normal, timeouts.suspicious),
                queue_shares=(1.0, 1.0, settings.normal_queue_share, settings.suspicious_queue_share),
                slot_shares=(1.0, 1.0, settings.normal_slot_share, settings.suspicious_slot_share),
            ),
        )
        self.critical_paths = tuple(path.encode() for path in settings.critical_paths)
        self.sessions = SessionTable(settings.session_cookies) if settings.session_cookies else None

    def priority(self, ex: Exchange, *, suspicious: bool, cleared: bool) -> Priority:
        head = ex.head
        assert head is not None
        critical = bool(self.critical_paths) and head.target.startswith(self.critical_paths)
        logged_in = False
        if self.sessions is not None and not critical:
            cookies = head.values(b"cookie")
            logged_in = bool(cookies) and self.sessions.logged_in(cookies)
        return classify(suspicious=suspicious, critical_route=critical, logged_in=logged_in, cleared=cleared)

    def learn_sessions(self, field_lines: list[bytes]) -> None:
        """The origin's response header lines (b"Name: value\\r\\n"): remember the session values it set."""
        sessions = self.sessions
        if sessions is None:
            return
        for line in field_lines:
            if line[:11].lower() == _SET_COOKIE:
                sessions.learn(line[11:].strip())

    def give_back(self, ticket: Ticket, ex: Exchange, now: float) -> list[Ticket]:
        """The exchange is done with the origin (or its client left): cancel a queued ticket, release an
        admitted one. Returns the tickets now admitted from the queue."""
        if ticket.state is TicketState.QUEUED:
            self.controller.cancel(ticket)
            return []
        if ticket.state is not TicketState.ADMITTED:
            return []
        latency = ex.response_at - ticket.admitted_at if ex.response_at else None
        return self.controller.release(ticket, latency, ex.status not in _OVERLOAD, now)
