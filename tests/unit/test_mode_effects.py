"""What the mode and the attack signatures make the data plane do (fake transports, FakeClock), and
what the worker's telemetry counts: under attack every request without a clearance is challenged (feeds
are not), a blocking signature refuses what it matches, and each outcome is counted."""

from __future__ import annotations

import socket

from fake_transport import FakeTransport

from shieldwall.control.state import ControlState
from shieldwall.detector.counters import MAX_ANSWERED, Answered, Outcome, WorkerSecond
from shieldwall.detector.events import Mode
from shieldwall.detector.signatures import Signature

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
BOT = "python-requests/2.31.0"


def get(target: str, ua: str = "Mozilla/5.0 Test") -> bytes:
    return f"GET {target} HTTP/1.1\r\nHost: h\r\nUser-Agent: {ua}\r\n\r\n".encode()


def test_under_attack_every_request_without_a_clearance_is_challenged(rig) -> None:
    rig.server._apply_control_state(ControlState(mode=Mode.UNDER_ATTACK))
    assert rig.server.challenges.level == 2, "challenges get harder"
    rig.client.data_received(get("/news"))
    assert rig.client_t.take().startswith(b"HTTP/1.1 403 ")
    rig.client.data_received(get("/feed.xml"))
    assert rig.up.take().startswith(b"GET /feed.xml "), "exempt paths are not challenged"
    rig.origin_says(OK)
    rig.client_t.take()
    counts = rig.server.telemetry.counters.by_outcome
    assert counts[Outcome.CHALLENGE] == 1 and counts[Outcome.ALLOW] == 1


def test_back_in_normal_mode_nothing_is_challenged(rig) -> None:
    rig.server._apply_control_state(ControlState(mode=Mode.UNDER_ATTACK))
    rig.server._apply_control_state(ControlState(mode=Mode.NORMAL))
    assert not rig.server.mode_effects.active
    rig.client.data_received(get("/news"))
    assert rig.up.take().startswith(b"GET /news ")


def test_a_blocking_signature_refuses_what_it_matches_and_only_that(rig) -> None:
    wall = rig.clock.wall()
    signature = Signature((("user_agent", BOT),), 0.98, 0.0, "block", wall, wall + 60)
    rig.server._apply_control_state(ControlState(mode=Mode.ELEVATED, signatures=(signature,)))
    rig.client.data_received(get("/search", ua=BOT))
    refused = rig.client_t.take()
    assert refused.startswith(b"HTTP/1.1 403 ")
    assert rig.server.telemetry.counters.by_outcome[Outcome.BLOCK] == 1
    browser_t = FakeTransport(("198.51.100.3", 40000))
    rig.connect(browser_t).data_received(get("/search"))
    assert rig.up.take().startswith(b"GET /search "), "a browser is not matched"


def test_an_expired_signature_matches_nothing(rig) -> None:
    wall = rig.clock.wall()
    signature = Signature((("user_agent", BOT),), 0.98, 0.0, "block", wall - 120, wall - 1)
    rig.server._apply_control_state(ControlState(signatures=(signature,)))
    rig.client.data_received(get("/search", ua=BOT))
    assert rig.up.take().startswith(b"GET /search ")


def test_each_second_goes_to_the_control_process_as_one_message(make_rig) -> None:
    reader, writer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    rig = make_rig()
    rig.server.telemetry.sock = writer
    rig.client.data_received(get("/a"))
    rig.origin_says(OK)
    rig.clock.advance(1.0)
    rig.server._sweep()
    second = WorkerSecond.from_bytes(reader.recv(1 << 20))
    assert second.by_outcome[Outcome.ALLOW] == 1
    assert second.by_status[1] == 1, "one 2xx from the origin"
    assert second.new_connections == 1
    assert second.top["path"].entries[0][0] == "/a"
    reader.close()
    writer.close()


def test_requests_the_shield_answered_itself_go_out_with_their_reference(make_rig) -> None:
    reader, writer = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    rig = make_rig()
    rig.server.telemetry.sock = writer
    rig.server._apply_control_state(ControlState(mode=Mode.UNDER_ATTACK))
    rig.client.data_received(get("/donate?x=1"))
    page = rig.client_t.take()
    ref = page.split(b"X-Shieldwall-Ref: ")[1][:15].decode()
    rig.clock.advance(1.0)
    rig.server._sweep()
    second = WorkerSecond.from_bytes(reader.recv(1 << 20))
    (answered,) = second.answered
    assert (answered.ref, answered.status, answered.reason) == (ref, 403, "mode-under_attack")
    assert answered.target == "/donate?x=1" and answered.client == "203.0.113.7"
    assert second.stats["refused.challenged"] == 1 and second.stats["connections.open"] == 1
    reader.close()
    writer.close()


def test_requests_are_counted_by_route_class(make_rig) -> None:
    rig = make_rig({"detector": {"route_classes": ["/search", "/api/"]}})
    for target in ("/search?q=1", "/api/events", "/news"):
        rig.client.data_received(get(target))
        rig.origin_says(OK)
        rig.client_t.take()
    assert rig.server.telemetry.counters.by_route == [1, 1, 1]
    rig.client.data_received(get("/search"))
    rig.origin_says(OK)
    assert rig.server.telemetry.counters.by_route == [1, 2, 1]


def test_past_its_cap_a_second_builds_no_more_answered_records(rig) -> None:
    counters = rig.server.telemetry.counters
    for n in range(MAX_ANSWERED + 5):
        if counters.wants_answer():
            counters.answer(Answered(f"SW-{n:012d}", 0.0, "203.0.113.7", "GET", "/", 429, "request rate"))
    assert len(counters.answered) == MAX_ANSWERED and counters.answered_dropped == 5
