"""Admission control in the data plane, with fake transports and a FakeClock: a fixed limit of one
request at the origin, so every other request queues, is admitted in priority order when the origin
answers, expires into a 503 + Retry-After, or leaves the queue with its client."""

from __future__ import annotations

from collections.abc import Callable

from fake_transport import FakeTransport
from rig import Rig

from shieldwall.admission.controller import TicketState
from shieldwall.control.state import ControlState
from shieldwall.detector.events import Mode

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def door_rig(make_rig: Callable[..., Rig], **admission: object) -> Rig:
    settings = {"enabled": True, "fixed_limit": 1, **admission}
    return make_rig({"admission": settings})


def get(path: str, *extra: str) -> bytes:
    lines = "".join(f"{line}\r\n" for line in extra)
    return f"GET {path} HTTP/1.1\r\nHost: h\r\n{lines}\r\n".encode()


def test_over_the_limit_a_request_waits_and_goes_when_the_origin_answers(make_rig) -> None:
    rig = door_rig(make_rig)
    rig.client.data_received(get("/first"))
    rig.up.take()
    second_t = FakeTransport(("198.51.100.9", 40000))
    second = rig.connect(second_t)
    second.data_received(get("/second"))
    assert len(rig.upstreams) == 1, "the second request waits: one request at the origin at once"
    rig.origin_says(OK)
    assert rig.client_t.take().startswith(b"HTTP/1.1 200 OK")
    assert rig.up.take().startswith(b"GET /second "), "the freed slot goes to the waiting request"
    rig.origin_says(OK)
    assert second_t.take().startswith(b"HTTP/1.1 200 OK")
    assert rig.server.door is not None and rig.server.door.controller.in_flight == 0


def test_a_critical_route_jumps_the_queue(make_rig) -> None:
    rig = door_rig(make_rig, critical_paths=["/donate"])
    rig.client.data_received(get("/busy"))
    rig.up.take()
    waiting = []
    for index, path in enumerate(["/news", "/donate"]):
        transport = FakeTransport((f"198.51.100.{10 + index}", 40000))
        rig.connect(transport).data_received(get(path))
        waiting.append(transport)
    rig.origin_says(OK)
    assert rig.up.take().startswith(b"GET /donate "), "the critical request was admitted first"


def test_a_wait_past_the_deadline_is_answered_503_with_retry_after(make_rig) -> None:
    rig = door_rig(make_rig, queue_timeout={"normal": 2.0})
    rig.client.data_received(get("/busy"))
    rig.up.take()
    late_t = FakeTransport(("198.51.100.20", 40000))
    rig.connect(late_t).data_received(get("/news"))
    rig.clock.advance(2.5)
    rig.server._sweep()
    out = late_t.take()
    assert out.startswith(b"HTTP/1.1 503 ")
    assert b"Retry-After: " in out
    assert not late_t.closed, "a shed bodiless request keeps its connection"
    assert rig.server.stats_refused["shed"] == 1
    assert rig.server.bans.table.suspect("198.51.100.20", rig.clock.wall()) is False, "not an offence"


def test_a_client_that_leaves_the_queue_gives_up_its_place(make_rig) -> None:
    rig = door_rig(make_rig)
    rig.client.data_received(get("/busy"))
    rig.up.take()
    gone_t = FakeTransport(("198.51.100.30", 40000))
    gone = rig.connect(gone_t)
    gone.data_received(get("/gone"))
    ticket = gone.current.ticket if gone.current else None
    assert ticket is not None and ticket.state is TicketState.QUEUED
    gone.connection_lost(None)
    assert ticket.state is TicketState.CANCELLED
    rig.origin_says(OK)
    assert len(rig.upstreams) == 1 and not rig.up.take(), "nothing is sent for the client that left"


def test_a_session_the_origin_set_makes_its_holder_critical(make_rig) -> None:
    rig = door_rig(make_rig, session_cookies=["sid"])
    rig.client.data_received(get("/login"))
    rig.origin_says(b"HTTP/1.1 200 OK\r\nSet-Cookie: sid=s3cret; HttpOnly\r\nContent-Length: 2\r\n\r\nok")
    rig.client_t.take()
    rig.client.data_received(get("/busy"))
    rig.up.take()
    forged_t, real_t = FakeTransport(("198.51.100.40", 40000)), FakeTransport(("198.51.100.41", 40000))
    rig.connect(forged_t).data_received(get("/forged", "Cookie: sid=guess"))
    rig.connect(real_t).data_received(get("/account", "Cookie: theme=dark; sid=s3cret"))
    rig.origin_says(OK)
    assert rig.up.take().startswith(b"GET /account "), "the origin's own session value goes first"


def test_a_client_the_shield_refused_is_served_last(make_rig) -> None:
    rig = door_rig(make_rig)
    rig.client.data_received(get("/busy"))
    rig.up.take()
    rig.server.offence("198.51.100.50", "198.51.100.0/24")
    rig.connect(FakeTransport(("198.51.100.50", 40000))).data_received(get("/offender"))
    rig.connect(FakeTransport(("198.51.100.51", 40000))).data_received(get("/visitor"))
    rig.origin_says(OK)
    assert rig.up.take().startswith(b"GET /visitor ")


def test_an_origin_timeout_cuts_the_adaptive_limit(make_rig) -> None:
    rig = make_rig(
        {
            "admission": {"enabled": True, "initial_limit": 10, "min_limit": 4, "max_limit": 64},
            "upstream": {"read_timeout": 1.0},
        }
    )
    door = rig.server.door
    assert door is not None
    rig.client.data_received(get("/slow"))
    rig.clock.advance(1.5)
    rig.server._sweep()
    assert rig.client_t.take().startswith(b"HTTP/1.1 504 ")
    assert door.controller.limit < 10
    assert door.controller.in_flight == 0


def test_a_visitor_with_a_clearance_goes_before_everyone_else(make_rig) -> None:
    rig = door_rig(make_rig)
    rig.client.data_received(get("/busy"))
    rig.up.take()
    challenges = rig.server.challenges
    now = rig.clock.wall()
    cleared_ip = "198.51.100.60"
    value = challenges.service.clearance.issue("198.51.100.0/24", b"t", level=0, now=now)
    rig.connect(FakeTransport(("198.51.100.61", 40000))).data_received(get("/plain", "User-Agent: t"))
    rig.connect(FakeTransport((cleared_ip, 40000))).data_received(
        get("/cleared", "User-Agent: t", f"Cookie: sw_clearance={value.decode()}")
    )
    rig.origin_says(OK)
    assert rig.up.take().startswith(b"GET /cleared ")


def test_a_slow_request_body_takes_no_origin_slot_until_it_has_arrived(make_rig) -> None:
    rig = door_rig(make_rig)
    rig.client.data_received(b"POST /donate HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nam")
    door = rig.server.door
    assert door is not None and door.controller.in_flight == 0 and not rig.upstreams
    visitor_t = FakeTransport(("198.51.100.70", 40000))
    rig.connect(visitor_t).data_received(get("/news"))
    assert rig.up.take().startswith(b"GET /news "), "the slot went to a request that was ready"
    rig.origin_says(OK)
    assert visitor_t.take().startswith(b"HTTP/1.1 200 OK")
    rig.client.data_received(b"ount=5&x")
    sent = rig.up.take()
    assert sent.startswith(b"POST /donate ") and sent.endswith(b"\r\n\r\namount=5&x")


def test_expect_100_continue_is_answered_while_the_body_is_read_before_admission(make_rig) -> None:
    rig = door_rig(make_rig)
    rig.client.data_received(
        b"POST /donate HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
    )
    assert rig.client_t.take() == b"HTTP/1.1 100 Continue\r\n\r\n"
    rig.client.data_received(b"abc")
    assert rig.up.take().endswith(b"\r\n\r\nabc")
    rig.origin_says(OK)
    assert rig.client_t.take().startswith(b"HTTP/1.1 200 OK"), "no second 100 Continue"


def test_requests_queued_before_an_attack_is_declared_are_judged_again(make_rig) -> None:
    rig = door_rig(make_rig)
    rig.client.data_received(get("/busy"))
    rig.up.take()
    queued_t = FakeTransport(("198.51.100.80", 40000))
    rig.connect(queued_t).data_received(get("/donate"))
    door = rig.server.door
    assert door is not None and door.controller.queued == 1
    rig.server._apply_control_state(ControlState(mode=Mode.UNDER_ATTACK))
    assert queued_t.take().startswith(b"HTTP/1.1 403 "), "challenged now, not served from the queue"
    assert door.controller.queued == 0
    rig.origin_says(OK)
    assert len(rig.upstreams) == 1 and not rig.up.take(), "nothing more reached the origin"
