"""The drill client's Session over scripted connections: exact request bytes, cookies, keep-alive,
the one retry a browser makes, and every failure returned as a Response, never raised."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from fake_transport import FakeTransport

from shieldwall.drill import client
from shieldwall.drill.client import CookieJar, Session, Target
from shieldwall.drill.loopback import NotLoopbackError

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
TARGET = Target("127.0.0.1", 8080, "campaign.test")
CLOSE = None  # in a script: the server closes the connection instead of answering


class ScriptedTransport(FakeTransport):
    """Answers each request written to it with the next item of its script."""

    def __init__(self, script: Iterator[bytes | None], connection: client._Connection) -> None:
        super().__init__(("127.0.0.1", 8080))
        self.script, self.connection, self.requests = script, connection, []

    def write(self, data: bytes) -> None:
        self.requests.append(data)
        answer = next(self.script)
        loop = asyncio.get_running_loop()
        if answer is CLOSE:
            self.closed = True
            loop.call_soon(self.connection.connection_lost, None)
        else:
            loop.call_soon(self.connection.data_received, answer)


@pytest.fixture
def wire(monkeypatch):
    """Every connection a Session opens reads from one script of answers; `wire` lists them."""
    transports: list[ScriptedTransport] = []
    script: list[bytes | None] = []

    async def connect(self: Session) -> client._Connection:
        connection = client._Connection(self.max_body)
        transport = ScriptedTransport(iter_script, connection)
        connection.connection_made(transport)
        transports.append(transport)
        return connection

    iter_script = (answer for answer in script)
    monkeypatch.setattr(Session, "_connect", connect)
    return transports, script


def run(session: Session, *requests: tuple[str, str, list[tuple[str, str]], bytes]) -> list[client.Response]:
    async def main() -> list[client.Response]:
        return [await session.request(*request) for request in requests]

    return asyncio.run(main())


def test_the_request_goes_out_exactly_as_given(wire):
    transports, script = wire
    script += [OK]
    session = Session(TARGET, kind="attack")
    session.jar.cookies["session"] = "abc"
    headers = [
        ("User-Agent", "Bot/1"),
        ("Accept", "*/*"),
        ("Content-Type", "application/x-www-form-urlencoded"),
    ]
    [response] = run(session, ("POST", "/donate", headers, b"amount=5"))
    assert transports[0].requests == [
        b"POST /donate HTTP/1.1\r\nHost: campaign.test\r\nUser-Agent: Bot/1\r\nAccept: */*\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 8\r\nCookie: session=abc\r\n"
        b"x-drill-kind: attack\r\n\r\namount=5"
    ]
    assert (response.status, response.body, response.error, response.method, response.target) == (
        200,
        b"ok",
        "",
        "POST",
        "/donate",
    )
    assert response.ok and response.new_connection and response.latency >= 0


def test_cookies_are_kept_and_sent_back_and_deleted(wire):
    transports, script = wire
    script += [
        b"HTTP/1.1 303 See Other\r\nSet-Cookie: session=u1.mac; Path=/; HttpOnly\r\n"
        b"Set-Cookie: theme=dark\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nSet-Cookie: theme=; Max-Age=0\r\nContent-Length: 0\r\n\r\n",
        OK,
    ]
    session = Session(TARGET, kind="legit")
    first, second, third = run(
        session, ("GET", "/a", [], b""), ("GET", "/b", [], b""), ("GET", "/c", [], b"")
    )
    assert first.status == 303 and first.header(b"set-cookie") == b"session=u1.mac; Path=/; HttpOnly"
    sent = transports[0].requests
    assert b"\r\nCookie: session=u1.mac; theme=dark\r\n" in sent[1]
    assert b"\r\nCookie: session=u1.mac\r\n" in sent[2]
    assert len(transports) == 1 and not second.new_connection and not third.new_connection


def test_a_jar_is_bounded_and_ignores_nonsense():
    jar = CookieJar()
    for n in range(client.MAX_COOKIES + 10):
        jar.store(b"c%d=v" % n)
    jar.store(b"no-equals-sign")
    jar.store(b"=value")
    assert len(jar.cookies) == client.MAX_COOKIES
    jar.store(b"c0=new")  # a known cookie may still change
    assert jar.cookies["c0"] == "new"


def test_connection_close_means_a_new_connection_next_time(wire):
    transports, script = wire
    script += [b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", OK]
    first, second = run(Session(TARGET, kind="legit"), ("GET", "/", [], b""), ("GET", "/", [], b""))
    assert first.status == second.status == 200
    assert len(transports) == 2 and transports[0].closed and second.new_connection


def test_a_get_on_a_connection_closed_while_idle_is_sent_once_more(wire):
    transports, script = wire
    script += [OK, CLOSE, OK]
    _, second = run(Session(TARGET, kind="legit"), ("GET", "/", [], b""), ("GET", "/again", [], b""))
    assert second.status == 200 and second.error == "" and second.new_connection
    assert len(transports) == 2 and transports[1].requests[0].startswith(b"GET /again ")


def test_a_post_is_never_sent_twice(wire):
    transports, script = wire
    script += [OK, CLOSE, OK]
    _, second = run(Session(TARGET, kind="legit"), ("GET", "/", [], b""), ("POST", "/donate", [], b"x=1"))
    assert (second.status, second.error) == (0, "closed")
    assert len(transports) == 1


def test_a_fresh_connection_that_closes_is_not_retried(wire):
    transports, script = wire
    script += [CLOSE, OK]
    [response] = run(Session(TARGET, kind="legit"), ("GET", "/", [], b""))
    assert (response.status, response.error, response.body) == (0, "closed", b"")
    assert len(transports) == 1


@pytest.mark.parametrize(
    ("answer", "error"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 200\r\n\r\n" + b"x" * 200, "too large"),
        (b"HTTP/1.1 200 OK\r\nX-Big: " + b"h" * (client.MAX_HEAD + 1) + b"\r\n\r\n", "too large"),
        (b"SMTP ready\r\n\r\n", "bad response"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", "closed"),  # then the server closed
    ],
)
def test_bad_answers_are_errors_not_exceptions(wire, answer, error):
    transports, script = wire
    script += [answer]

    async def main() -> client.Response:
        session = Session(TARGET, kind="legit", max_body=100)
        pending = asyncio.ensure_future(session.request("GET", "/"))
        for _ in range(3):
            await asyncio.sleep(0)
        if not pending.done():  # the server gave part of an answer, then went away
            transports[0].connection.connection_lost(None)
        return await pending

    response = asyncio.run(main())
    assert (response.status, response.error) == (0, error)


def test_chunked_answers_are_put_together(wire):
    _, script = wire
    script += [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"]
    [response] = run(Session(TARGET, kind="legit"), ("GET", "/", [], b""))
    assert response.body == b"abcde"


def test_an_answer_nobody_asked_for_retires_the_connection(wire):
    transports, script = wire
    script += [OK, OK]

    async def main() -> tuple[client.Response, client.Response]:
        session = Session(TARGET, kind="legit")
        first = await session.request("GET", "/")
        transports[0].connection.data_received(b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n")
        return first, await session.request("GET", "/")

    first, second = asyncio.run(main())
    assert first.status == second.status == 200
    assert transports[0].closed and len(transports) == 2


def test_one_request_at_a_time(wire):
    _, script = wire
    script += [OK, OK]

    async def main() -> None:
        session = Session(TARGET, kind="legit")
        first = asyncio.ensure_future(session.request("GET", "/"))
        await asyncio.sleep(0)
        with pytest.raises(RuntimeError, match="one request at a time"):
            await session.request("GET", "/")
        await first

    asyncio.run(main())


def test_targets_and_sources_must_be_loopback():
    assert Target.parse("http://127.0.0.1:8080") == Target("127.0.0.1", 8080, "127.0.0.1:8080")
    assert Target.parse("[::1]:81", host_header="campaign.test") == Target("::1", 81, "campaign.test")
    assert Target.parse("http://[::1]:81/").host_header == "[::1]:81"
    with pytest.raises(NotLoopbackError):
        Target.parse("http://192.0.2.1:80")
    with pytest.raises(ValueError, match="only http"):
        Target.parse("https://127.0.0.1:443")
    with pytest.raises(NotLoopbackError):
        Session(TARGET, kind="attack", source="10.1.2.3")
    with pytest.raises(ValueError, match="IP version"):
        Session(TARGET, kind="attack", source="::1")


def test_a_target_cannot_be_built_around_the_loopback_check():
    with pytest.raises(NotLoopbackError):
        Target("93.184.216.34", 80, "example.org")
    with pytest.raises(ValueError, match="canonical"):
        Target("localhost", 80, "x")


def test_a_second_answer_in_the_same_read_retires_the_connection(wire):
    transports, script = wire
    script += [OK + b"HTTP/1.1 200 OK\r\nX-Extra: 1\r\nContent-Length: 0\r\n\r\n", OK]
    first, second = run(Session(TARGET, kind="legit"), ("GET", "/", [], b""), ("GET", "/", [], b""))
    assert first.status == 200 and first.body == b"ok" and first.header(b"x-extra") is None
    assert transports[0].closed and len(transports) == 2 and second.status == 200
