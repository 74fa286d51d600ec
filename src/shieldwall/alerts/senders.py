"""Delivering alerts from the control process's event loop, without ever holding up its tick.

Each destination has an `Outbox`: a bounded queue and one task that delivers what is in it, in order,
one at a time. `Outbox.put` only appends to the queue, so the tick that calls it returns at once
however slow or dead the destination is; a full queue drops its oldest alert (counted and logged).
Destinations are independent: one that hangs delays only its own queue.

A delivery has `timeout` seconds in all (the HTTP client's own timeouts are per phase, so a server
that trickles its answer is cut off by the outbox's overall limit), and up to `retries` more attempts
after pauses of 1, 2, 4 ... s (at most BACKOFF_MAX). A 4xx answer other than 408 and 429 is not
retried: asking again will not change it. When the last attempt fails the alert is dropped and the
failure logged once, naming the destination but never its URL (Slack and Teams URLs are secrets).

Webhooks go out with httpx's async client (no proxy or .netrc from the environment: a shield's alerts
should not depend on a login shell's variables). smtplib blocks, so email is sent from a small thread
pool of its own; its socket timeout bounds each step, and the outbox's timeout bounds the whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import smtplib
import socket
import ssl
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from email.message import EmailMessage
from typing import Any, Final, Protocol

import httpx

from shieldwall.alerts.messages import email_message
from shieldwall.alerts.policy import Notice
from shieldwall.report import words

log = logging.getLogger("shieldwall.alerts")

BACKOFF_FIRST: Final = 1.0
BACKOFF_MAX: Final = 30.0
_RETRIED_4XX: Final = frozenset((408, 429))


class DeliveryError(Exception):
    """The destination answered, but not with success; `permanent` when asking again is pointless."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Destination(Protocol):
    name: str

    async def deliver(self, notice: Notice) -> None:
        """Send one notice; raise on failure."""
        ...


class WebhookDestination:
    def __init__(
        self,
        name: str,
        url: str,
        payload: Callable[[Notice], Mapping[str, Any]],
        client: httpx.AsyncClient,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self._url = url
        self._payload = payload
        self._client = client
        self._headers = {**(headers or {}), "content-type": "application/json"}

    async def deliver(self, notice: Notice) -> None:
        body = json.dumps(self._payload(notice), ensure_ascii=False).encode()
        response = await self._client.post(self._url, content=body, headers=self._headers)
        status = response.status_code
        if not 200 <= status < 300:
            permanent = 400 <= status < 500 and status not in _RETRIED_4XX
            raise DeliveryError(f"HTTP {status} {response.reason_phrase}".rstrip(), permanent=permanent)


class EmailDestination:
    def __init__(
        self,
        name: str,
        *,
        shield: str,
        host: str,
        port: int,
        sender: str,
        to: tuple[str, ...],
        executor: Executor,
        timeout: float,
        starttls: bool = False,
        use_ssl: bool = False,
        username: str = "",
        password: str = "",
        tls_context: ssl.SSLContext | None = None,
    ) -> None:
        self.name = name
        self._shield = shield
        self._host, self._port = host, port
        self._sender, self._to = sender, to
        self._executor = executor
        self._timeout = timeout
        self._starttls, self._ssl = starttls, use_ssl
        self._username, self._password = username, password
        self._tls_context = tls_context  # None: the system's trusted CAs, with host name checks

    async def deliver(self, notice: Notice) -> None:
        message = email_message(notice, self._shield, self._sender, self._to)
        await asyncio.get_running_loop().run_in_executor(self._executor, self._send, message)

    def _send(self, message: EmailMessage) -> None:
        context = self._tls_context or ssl.create_default_context()
        # EHLO names this machine; smtplib would otherwise ask DNS for its fully qualified name.
        helo = socket.gethostname()
        smtp: smtplib.SMTP
        if self._ssl:
            smtp = smtplib.SMTP_SSL(
                self._host, self._port, local_hostname=helo, timeout=self._timeout, context=context
            )
        else:
            smtp = smtplib.SMTP(self._host, self._port, local_hostname=helo, timeout=self._timeout)
        with smtp:
            if self._starttls:
                smtp.starttls(context=context)
            if self._username:
                smtp.login(self._username, self._password)
            refused = smtp.send_message(message)
        if refused:
            raise DeliveryError(f"refused for {', '.join(sorted(refused))}", permanent=True)


class Outbox:
    """One destination's queue of notices and the task that delivers them (see the module docstring)."""

    def __init__(
        self,
        destination: Destination,
        *,
        capacity: int = 50,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = BACKOFF_FIRST,
    ) -> None:
        self.destination = destination
        self.capacity = capacity
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.pending: deque[Notice] = deque()
        self.delivered = 0
        self.failed = 0
        self.dropped = 0
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    @property
    def name(self) -> str:
        return self.destination.name

    def start(self) -> None:
        """Start delivering (from inside the running event loop)."""
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"alerts to {self.name}")

    def put(self, notice: Notice) -> None:
        """Queue a notice; never waits, never raises."""
        if len(self.pending) >= self.capacity:
            self.pending.popleft()
            self.dropped += 1
            log.warning(
                "alerts to %s: %d are waiting, the most allowed; dropped the oldest (%d dropped so far)",
                self.name,
                self.capacity,
                self.dropped,
            )
        self.pending.append(notice)
        self._idle.clear()
        self._wake.set()

    async def aclose(self, grace: float) -> None:
        """Give what is queued up to `grace` seconds to go out, then stop."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace):
                await self._idle.wait()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        if self.pending:
            log.warning("alerts to %s: %d not sent before stopping", self.name, len(self.pending))

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self.pending:
                await self._deliver(self.pending.popleft())
            self._idle.set()

    async def _deliver(self, notice: Notice) -> None:
        error = ""
        attempts = 0
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(min(BACKOFF_MAX, self.backoff * 2 ** (attempt - 1)))
            attempts += 1
            try:
                async with asyncio.timeout(self.timeout):
                    await self.destination.deliver(notice)
            except TimeoutError:
                error = f"no answer within {self.timeout:g} s"
            except DeliveryError as exc:
                error = str(exc)
                if exc.permanent:
                    break
            except Exception as exc:  # any failure of one delivery is that delivery's, never the loop's
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            else:
                self.delivered += 1
                return
        self.failed += 1
        log.warning(
            "alert to %s failed after %s (%s); dropped it",
            self.name,
            words.plural(attempts, "attempt"),
            error,
        )
