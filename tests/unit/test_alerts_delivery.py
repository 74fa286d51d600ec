"""Delivering alerts to real servers on loopback: an HTTP server (answering, hanging or failing) and an
SMTP server (aiosmtpd, plain, STARTTLS with a login, implicit TLS, or one that never greets), all in
the test's own event loop. The alerter shares that loop, as it shares the control process's: a
destination that hangs must not delay the caller (measured), nor the other destinations."""

from __future__ import annotations

import asyncio
import json
import logging
import smtplib
import ssl
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from alerts_sample import recorded_incident, replay, ticks

from shieldwall.alerts.alerter import start_alerter
from shieldwall.alerts.messages import generic_payload, slack_payload
from shieldwall.alerts.policy import Alert, AlertKind, AlertPolicy, Notice
from shieldwall.alerts.senders import DeliveryError, EmailDestination, Outbox, WebhookDestination
from shieldwall.config import parse_config
from shieldwall.config.alerts_schema import Alerts
from shieldwall.detector.events import Mode

SHIELD = "www.example.org"
SECRET_PATH = "/services/T0000/B0000/s3cr3t"


def alerts_section(**alerts: Any) -> Alerts:
    return parse_config({"alerts": alerts}).alerts


def first_tick() -> tuple[float, list[Any]]:
    at, events = ticks(recorded_incident())[0]
    return at, events


def an_alert(reason: str = "") -> Alert:
    return Alert(AlertKind.ESCALATED, 1_718_000_000.0, "INC-1", Mode.ELEVATED, Mode.UNDER_ATTACK, reason)


async def eventually(check: Callable[[], bool], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "timed out waiting"
        await asyncio.sleep(0.01)


# --- servers -------------------------------------------------------------------------------------


@dataclass
class HttpSink:
    """A loopback HTTP server: answers `status`, or never answers when `status` is None."""

    status: int | None = 200
    requests: list[tuple[str, dict[str, str], bytes, float]] = field(default_factory=list)
    port: int = 0
    _server: asyncio.Server | None = None

    async def start(self) -> HttpSink:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def url(self, path: str = SECRET_PATH) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line, *fields = head.decode().split("\r\n")[:-2]
                headers = {k.strip().lower(): v.strip() for k, _, v in (f.partition(":") for f in fields)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append((line, headers, body, time.monotonic()))
                if self.status is None:
                    await asyncio.sleep(3600)
                writer.write(f"HTTP/1.1 {self.status} X\r\nContent-Length: 0\r\n\r\n".encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()


class Mailbox:
    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(envelope)
        return "250 OK"

    def __init__(self) -> None:
        self.received: list[Envelope] = []
        self.logins: list[bytes] = []

    def authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password == b"s3cret pass"
        if ok:
            self.logins.append(data.login)
        return AuthResult(success=ok, handled=False)  # not handled: aiosmtpd answers 535 itself

    def subjects(self) -> list[str]:
        return [str(message_from_bytes(e.content, policy=default_policy)["Subject"]) for e in self.received]  # type: ignore[arg-type]


async def smtp_server(
    mailbox: Mailbox, *, tls: ssl.SSLContext | None = None, implicit_tls: bool = False
) -> tuple[asyncio.Server, int]:
    def protocol() -> SMTP:
        return SMTP(
            mailbox,
            hostname="mail.test",
            tls_context=None if implicit_tls else tls,
            require_starttls=tls is not None and not implicit_tls,
            authenticator=mailbox.authenticate,
            auth_exclude_mechanism=["LOGIN"],  # PLAIN alone: a refused login is one 535, not a dialogue
        )

    server = await asyncio.get_running_loop().create_server(
        protocol, "127.0.0.1", 0, ssl=tls if implicit_tls else None
    )
    return server, server.sockets[0].getsockname()[1]


async def silent_server() -> tuple[asyncio.Server, int]:
    """Accepts connections and never says a word (an SMTP server that never greets)."""

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


@pytest.fixture(scope="module")
def tls() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting it) for 127.0.0.1."""
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(main())


# --- through the alerter, as the control process uses it ------------------------------------------


def test_alerts_reach_webhooks_and_a_mailbox() -> None:
    async def main() -> None:
        slack, generic = await HttpSink().start(), await HttpSink().start()
        mailbox = Mailbox()
        smtp, smtp_port = await smtp_server(mailbox)
        section = alerts_section(
            webhooks=[
                {"url": slack.url(), "format": "slack"},
                {"url": generic.url("/hook"), "headers": {"authorization": "Bearer t0ken"}},
            ],
            email={
                "host": "127.0.0.1",
                "port": smtp_port,
                "sender": "shield@example.org",
                "to": ["soc@example.org"],
            },
        )
        alerter = start_alerter(section, shield=SHIELD)
        at, events = first_tick()
        alerter.observe(events, [], at)
        await eventually(lambda: bool(slack.requests and generic.requests and mailbox.received))
        await alerter.aclose()

        line, headers, body, _ = slack.requests[0]
        assert line == f"POST {SECRET_PATH} HTTP/1.1"
        assert headers["content-type"] == "application/json"
        payload = json.loads(body)
        assert (
            payload["text"] == f"[{SHIELD}] Possible attack: mode elevated (on guard) (INC-20240610-061821)"
        )
        assert payload == slack_payload(_the_opened_alert(), SHIELD)
        _, headers, body, _ = generic.requests[0]
        assert headers["authorization"] == "Bearer t0ken"
        assert json.loads(body) == generic_payload(_the_opened_alert(), SHIELD)
        assert mailbox.subjects() == [
            f"[{SHIELD}] Possible attack: mode elevated (on guard) (INC-20240610-061821)"
        ]
        assert mailbox.received[0].rcpt_tos == ["soc@example.org"]
        smtp.close()
        await slack.stop()
        await generic.stop()

    run(main)


def _the_opened_alert() -> Notice:
    return replay(AlertPolicy(["x"]), recorded_incident())[0].notice


def test_a_hanging_destination_delays_neither_the_caller_nor_the_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="shieldwall.alerts")
    timings: dict[str, float] = {}

    async def main() -> None:
        hanging, answering = await HttpSink(status=None).start(), await HttpSink().start()
        silent, silent_port = await silent_server()
        section = alerts_section(
            timeout=0.3,
            retries=0,
            webhooks=[{"url": hanging.url()}, {"url": answering.url("/ok")}],
            email={
                "host": "127.0.0.1",
                "port": silent_port,
                "sender": "s@example.org",
                "to": ["t@example.org"],
            },
        )
        alerter = start_alerter(section, shield=SHIELD)
        at, events = first_tick()

        lags: list[float] = []

        async def ticker() -> None:  # the control loop's other work, which must keep its rhythm
            for _ in range(60):
                before = time.monotonic()
                await asyncio.sleep(0.01)
                lags.append(time.monotonic() - before - 0.01)

        ticking = asyncio.create_task(ticker())
        started = time.perf_counter()
        alerter.observe(events, [], at)
        timings["observe"] = time.perf_counter() - started
        sent = time.monotonic()
        await eventually(lambda: bool(answering.requests))
        timings["answering"] = answering.requests[0][3] - sent
        await ticking
        timings["worst_lag"] = max(lags)
        await eventually(
            lambda: (
                alerter.outboxes["email"].failed == 1
                and alerter.outboxes["webhook 0 (127.0.0.1)"].failed == 1
            )
        )
        timings["failed_after"] = time.monotonic() - sent
        await alerter.aclose()
        assert alerter.outboxes["webhook 1 (127.0.0.1)"].delivered == 1
        assert len(hanging.requests) == 1
        silent.close()
        await hanging.stop()
        await answering.stop()

    run(main)
    assert timings["observe"] < 0.02, timings  # measured: ~0.1 ms
    assert timings["answering"] < 0.3, timings  # well before the hanging ones time out
    assert timings["worst_lag"] < 0.1, timings
    assert 0.3 <= timings["failed_after"] < 2.0, timings
    failures = [r.getMessage() for r in caplog.records if "failed" in r.getMessage()]
    assert sorted(failures) == [
        "alert to email failed after 1 attempt (no answer within 0.3 s); dropped it",
        "alert to webhook 0 (127.0.0.1) failed after 1 attempt (no answer within 0.3 s); dropped it",
    ]
    assert not any(SECRET_PATH in r.getMessage() for r in caplog.records)


# --- the outbox ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "attempts", "error"), [(500, 3, "HTTP 500 X"), (404, 1, "HTTP 404 X"), (429, 3, "HTTP 429 X")]
)
def test_failures_are_retried_unless_permanent_and_logged_once(
    caplog: pytest.LogCaptureFixture, status: int, attempts: int, error: str
) -> None:
    caplog.set_level(logging.WARNING, logger="shieldwall.alerts")

    async def main() -> None:
        sink = await HttpSink(status=status).start()
        async with httpx.AsyncClient(trust_env=False) as client:
            hook = WebhookDestination("hook", sink.url(), lambda n: {"n": 1}, client)
            outbox = Outbox(hook, retries=2, backoff=0.01, timeout=2.0)
            outbox.start()
            outbox.put(an_alert())
            await eventually(lambda: outbox.failed == 1)
            await outbox.aclose(0.1)
        assert len(sink.requests) == attempts
        await sink.stop()

    run(main)
    assert [r.getMessage() for r in caplog.records] == [
        f"alert to hook failed after {attempts} attempt{'s' if attempts > 1 else ''} ({error}); dropped it"
    ]


class Gate:
    """A destination that delivers only when let through, recording what it delivered."""

    name = "gate"

    def __init__(self) -> None:
        self.open = asyncio.Event()
        self.delivered: list[Notice] = []

    async def deliver(self, notice: Notice) -> None:
        await self.open.wait()
        self.delivered.append(notice)


def test_a_full_queue_drops_the_oldest_and_counts_it(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="shieldwall.alerts")

    async def main() -> None:
        gate = Gate()
        outbox = Outbox(gate, capacity=2, timeout=5.0)
        outbox.start()
        for index in range(5):
            outbox.put(an_alert(str(index)))
        assert outbox.dropped == 3 and [n.reason for n in outbox.pending] == ["3", "4"]  # type: ignore[union-attr]
        gate.open.set()
        await eventually(lambda: outbox.delivered == 2)
        await outbox.aclose(0.1)
        assert [n.reason for n in gate.delivered] == ["3", "4"]  # type: ignore[union-attr]

    run(main)
    assert len([r for r in caplog.records if "dropped the oldest" in r.getMessage()]) == 3


def test_close_gives_queued_alerts_their_grace_and_no_more() -> None:
    async def main() -> None:
        gate = Gate()
        outbox = Outbox(gate, timeout=60.0)
        outbox.start()
        outbox.put(an_alert())
        started = time.monotonic()
        await outbox.aclose(0.2)
        assert 0.2 <= time.monotonic() - started < 1.0
        assert outbox.delivered == 0 and len(outbox.pending) == 0  # taken, then cut off by the close

    run(main)


# --- email ---------------------------------------------------------------------------------------


def _email(port: int, client_tls: ssl.SSLContext | None = None, **options: Any) -> EmailDestination:
    return EmailDestination(
        "email",
        shield=SHIELD,
        host="127.0.0.1",
        port=port,
        sender="shield@example.org",
        to=("soc@example.org", "it@example.org"),
        executor=ThreadPoolExecutor(1),
        timeout=5.0,
        tls_context=client_tls,
        **options,
    )


def test_email_over_starttls_with_a_login(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    async def main() -> None:
        mailbox = Mailbox()
        server, port = await smtp_server(mailbox, tls=tls[0])
        await _email(port, tls[1], starttls=True, username="shield", password="s3cret pass").deliver(
            an_alert()
        )
        assert mailbox.logins == [b"shield"]
        assert mailbox.received[0].rcpt_tos == ["soc@example.org", "it@example.org"]
        with pytest.raises(smtplib.SMTPAuthenticationError, match="535"):
            await _email(port, tls[1], starttls=True, username="shield", password="wrong").deliver(an_alert())
        server.close()

    run(main)


def test_email_over_implicit_tls(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    async def main() -> None:
        mailbox = Mailbox()
        server, port = await smtp_server(mailbox, tls=tls[0], implicit_tls=True)
        # aiosmtpd offers AUTH only after its own STARTTLS, so this one sends without a login.
        await _email(port, tls[1], use_ssl=True).deliver(an_alert())
        assert mailbox.subjects() == [f"[{SHIELD}] Escalated to under attack (INC-1)"]
        server.close()

    run(main)


def test_starttls_checks_the_servers_certificate(tls: tuple[ssl.SSLContext, ssl.SSLContext]) -> None:
    async def main() -> None:
        server, port = await smtp_server(Mailbox(), tls=tls[0])
        with pytest.raises(ssl.SSLCertVerificationError):
            await _email(port, ssl.create_default_context(), starttls=True).deliver(an_alert())
        server.close()

    run(main)


def test_a_refused_recipient_is_a_permanent_failure() -> None:
    class Picky(Mailbox):
        async def handle_RCPT(
            self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
        ) -> str:
            if address.startswith("it@"):
                return "550 no such user"
            envelope.rcpt_tos.append(address)
            return "250 OK"

    async def main() -> None:
        mailbox = Picky()
        server, port = await smtp_server(mailbox)
        with pytest.raises(DeliveryError, match=r"refused for it@example\.org") as caught:
            await _email(port).deliver(an_alert())
        assert caught.value.permanent
        assert mailbox.received[0].rcpt_tos == ["soc@example.org"]  # the others still got it
        server.close()

    run(main)


# --- the alerter's own guards --------------------------------------------------------------------


def test_a_failing_policy_costs_a_log_line_not_the_tick(caplog: pytest.LogCaptureFixture) -> None:
    async def main() -> None:
        alerter = start_alerter(alerts_section(webhooks=[{"url": "http://127.0.0.1:9/x"}]), shield=SHIELD)

        def broken(*args: Any) -> Any:
            raise RuntimeError("bug")

        alerter.policy.observe = broken  # type: ignore[method-assign,assignment]
        at, events = first_tick()
        alerter.observe(events, [], at)
        await alerter.aclose()

    run(main)
    assert [r.getMessage() for r in caplog.records] == [
        "the alert policy failed; this tick's alerts are lost"
    ]


def test_a_password_file_others_can_read_turns_email_off_and_keeps_the_webhooks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    secret = tmp_path / "smtp-password"
    secret.write_text("s3cret\n")
    secret.chmod(0o644)
    section = alerts_section(
        webhooks=[{"url": "http://127.0.0.1:9/x"}],
        email={
            "username": "u",
            "password_file": str(secret),
            "sender": "s@example.org",
            "to": ["t@example.org"],
        },
    )

    async def main() -> None:
        alerter = start_alerter(section, shield=SHIELD)
        assert list(alerter.outboxes) == ["webhook 0 (127.0.0.1)"]
        await alerter.aclose()

    run(main)
    assert f"alerts.email.password_file: {secret} is readable by other users (mode 0644)" in caplog.text
    assert "email alerts are off until it is fixed" in caplog.text
