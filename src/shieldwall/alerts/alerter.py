"""The alerts as the control process uses them: built from `[alerts]` inside its event loop, given each
tick's events, closed when it stops.

`Alerter.observe` runs the policy and queues what it releases; it never waits and never raises, so a
broken alert setup costs the control process a log line, never a tick. A setup problem found at start
(an SMTP password file others can read) turns that destination off, logged, and keeps the others.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import stat
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

import httpx

from shieldwall.alerts.messages import generic_payload, slack_payload, teams_payload
from shieldwall.alerts.policy import AlertKind, AlertPolicy
from shieldwall.alerts.senders import Destination, EmailDestination, Outbox, WebhookDestination
from shieldwall.config.alerts_schema import Alerts
from shieldwall.detector.events import Event
from shieldwall.detector.incidents import Incident

log = logging.getLogger("shieldwall.alerts")

CLOSE_GRACE: Final = 2.0  # seconds queued alerts get to go out when the control process stops
_PAYLOADS: Final[Mapping[str, Callable[..., Mapping[str, Any]]]] = {
    "generic": generic_payload,
    "slack": slack_payload,
    "teams": teams_payload,
}


class Alerter:
    def __init__(
        self,
        policy: AlertPolicy,
        outboxes: Sequence[Outbox],
        *,
        client: httpx.AsyncClient | None = None,
        executor: ThreadPoolExecutor | None = None,
    ) -> None:
        self.policy = policy
        self.outboxes = {outbox.name: outbox for outbox in outboxes}
        self._client = client
        self._executor = executor
        for outbox in outboxes:
            outbox.start()

    def observe(self, events: Sequence[Event], closed: Sequence[Incident], now: float) -> None:
        """One tick's events and closed incidents (`now` monotonic). Returns at once."""
        if not self.outboxes:
            return
        try:
            deliveries = self.policy.observe(events, closed, now)
        except Exception:
            log.exception("the alert policy failed; this tick's alerts are lost")
            return
        for delivery in deliveries:
            self.outboxes[delivery.destination].put(delivery.notice)

    async def aclose(self, grace: float = CLOSE_GRACE) -> None:
        await asyncio.gather(*(outbox.aclose(grace) for outbox in self.outboxes.values()))
        if self._client is not None:
            await self._client.aclose()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)


def start_alerter(section: Alerts, *, shield: str | None = None) -> Alerter:
    """The alerter for `[alerts]`, delivering from the running event loop. `shield` names this shield in
    the alerts (default: `name`, else the host name)."""
    shield = shield or section.name or socket.gethostname()
    destinations: list[Destination] = []
    client = executor = None
    if section.webhooks:
        # httpx logs every request, URL and all, at INFO: a Slack or Teams URL is a secret.
        logging.getLogger("httpx").setLevel(logging.WARNING)
        client = httpx.AsyncClient(timeout=section.timeout, trust_env=False, follow_redirects=False)
        for index, hook in enumerate(section.webhooks):
            name = f"webhook {index} ({urlsplit(hook.url).hostname})"
            payload = partial(_PAYLOADS[hook.format], shield=shield)
            destinations.append(WebhookDestination(name, hook.url, payload, client, hook.headers))
    email = section.email
    if email.to:
        password = ""
        try:
            if email.password_file is not None:
                password = read_password(email.password_file)
        except ValueError as exc:
            log.error("alerts.email.password_file: %s; email alerts are off until it is fixed", exc)
        else:
            executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="shieldwall-smtp")
            destinations.append(
                EmailDestination(
                    "email",
                    shield=shield,
                    host=email.host,
                    port=email.port,
                    sender=email.sender,
                    to=email.to,
                    executor=executor,
                    timeout=section.timeout,
                    starttls=email.starttls,
                    use_ssl=email.ssl,
                    username=email.username,
                    password=password,
                )
            )
    policy = AlertPolicy(
        [destination.name for destination in destinations],
        kinds=[AlertKind(kind) for kind in section.events],
        max_per_window=section.max_per_10_minutes,
        window=600.0,
        repeat_after=section.repeat_after,
    )
    outboxes = [
        Outbox(destination, capacity=section.queue_size, timeout=section.timeout, retries=section.retries)
        for destination in destinations
    ]
    if outboxes:
        log.info("alerts go to %s", ", ".join(outbox.name for outbox in outboxes))
    return Alerter(policy, outboxes, client=client, executor=executor)


def read_password(path: Path) -> str:
    """The file's first line. Refused when group or others may read it: the password would be one
    `cat` away for every local account."""
    try:
        with path.open("rb") as file:
            mode = os.fstat(file.fileno()).st_mode
            if mode & (stat.S_IRWXG | stat.S_IRWXO):
                raise ValueError(
                    f"{path} is readable by other users (mode {stat.S_IMODE(mode):04o}); run chmod 600 {path}"
                )
            text = file.read().decode()
    except OSError as exc:
        raise ValueError(f"cannot read {path}: {exc.strerror}; check the path and its owner") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not UTF-8 text; write the password as plain text") from None
    return text.splitlines()[0] if text else ""
