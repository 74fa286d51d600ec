"""`[alerts]`: who hears about an attack (webhooks, email), about what, and how often at most.

No destination by default, so no alert is sent until the operator names one. Secrets stay out of the
file where the protocol allows: the SMTP password is read from `password_file` (checked to be private
when the control process starts, alerts/alerter.py); a webhook's URL or an `authorization` header is a
secret too, so keep the config file itself private when it holds one.
"""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, field_validator, model_validator

from shieldwall.config.validators import TOKEN, PositiveFloat, PositiveInt, Section, StrictBool

AlertEvent = Literal["opened", "escalated", "deescalated", "closed", "pinned", "unpinned"]

# Not a full RFC 5322 parser: one @, and none of the characters that would let an address smuggle a
# second recipient or a header into the message.
_ADDRESS = re.compile(r"[^@\s<>,;:\"()\[\]\\]+@[A-Za-z0-9.-]+")
# Headers the HTTP client writes itself from the request it sends.
_OWN_HEADERS = frozenset(("host", "content-length", "content-type", "transfer-encoding", "connection"))


def _url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("https", "http"):
        raise ValueError("a webhook URL starts with https:// (or http://); copy it from the chat tool")
    try:
        parts.port  # noqa: B018 (urlsplit checks the port only when asked)
    except ValueError:
        raise ValueError("the port is not a number in 1-65535; copy the URL again") from None
    if not parts.hostname:
        raise ValueError("the URL has no host; copy it from the chat tool, e.g. https://hooks.slack.com/...")
    return value


def _address(value: str) -> str:
    if not _ADDRESS.fullmatch(value):
        raise ValueError("not an email address; write it like soc@example.org, without a display name")
    return value


def _headers(value: dict[str, str]) -> dict[str, str]:
    for name, text in value.items():
        if not TOKEN.fullmatch(name):
            raise ValueError(f"{name!r} is not a header name; use letters, digits and -, e.g. authorization")
        if name.lower() in _OWN_HEADERS:
            raise ValueError(f"{name!r} is set by shieldwall for each request; remove it")
        if any(ord(char) < 32 or ord(char) == 127 for char in text):
            raise ValueError(f"the value of {name!r} holds a control character; write it on one line")
    return value


def _optional_address(value: str) -> str:
    return _address(value) if value else value


EmailAddress = Annotated[str, AfterValidator(_address)]


class Webhook(Section):
    url: Annotated[str, AfterValidator(_url)] = Field(
        description="where to POST each alert (a secret for Slack and Teams: anyone with it can post)"
    )
    format: Literal["generic", "slack", "teams"] = Field(
        default="generic", description="the payload: shieldwall's JSON, Slack's or a Teams Adaptive Card"
    )
    headers: Annotated[dict[str, str], AfterValidator(_headers)] = Field(
        default_factory=dict, description='extra request headers, e.g. { authorization = "Bearer ..." }'
    )


class Email(Section):
    """Alerts by email through an SMTP server; off while `to` is empty."""

    host: str = Field(default="localhost", description="the SMTP server (the local MTA by default)")
    port: Annotated[int, Field(ge=1, le=65535, strict=True)] = Field(
        default=25, description="25 (local MTA), 587 (submission with starttls) or 465 (ssl)"
    )
    starttls: StrictBool = Field(default=False, description="upgrade the connection with STARTTLS")
    ssl: StrictBool = Field(default=False, description="TLS from the first byte (port 465)")
    username: str = Field(default="", description="log in as this user (with password_file)")
    password_file: Path | None = Field(
        default=None, description="file holding the SMTP password, readable only by shieldwall's user"
    )
    sender: Annotated[str, AfterValidator(_optional_address)] = Field(
        default="", description="the From address"
    )
    to: tuple[EmailAddress, ...] = Field(default=(), description="recipients; empty = no email")

    @field_validator("host")
    @classmethod
    def _host(cls, value: str) -> str:
        if not value or any(char.isspace() for char in value):
            raise ValueError("not a host name; write a name or an address, e.g. smtp.example.org")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Email:
        if self.starttls and self.ssl:
            raise ValueError("starttls and ssl are both on; ssl is for port 465, starttls for 587: keep one")
        if bool(self.username) != (self.password_file is not None):
            raise ValueError("username and password_file go together; set both to log in, or neither")
        if self.username and not (self.starttls or self.ssl or _is_loopback(self.host)):
            raise ValueError(
                "logging in without TLS would send the password in clear; set starttls = true (port 587) "
                "or ssl = true (port 465)"
            )
        if self.to and not self.sender:
            raise ValueError("to is set but sender is empty; set sender to the From address")
        return self


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Alerts(Section):
    """Alerts on incident open, escalation and close (and operator pins), to webhooks and email."""

    name: str = Field(default="", description="the shield's name in alerts; empty = the host name")
    events: tuple[AlertEvent, ...] = Field(
        default=("opened", "escalated", "closed", "pinned", "unpinned"), description="which events alert"
    )
    max_per_10_minutes: PositiveInt = Field(
        default=5, description="alerts per destination in any 10 minutes; the rest go in one digest"
    )
    repeat_after: Annotated[float, Field(ge=0, strict=True)] = Field(
        default=600.0, description="seconds before the same mode change in one incident alerts again"
    )
    timeout: PositiveFloat = Field(default=10.0, description="seconds one delivery attempt may take")
    retries: Annotated[int, Field(ge=0, le=5, strict=True)] = Field(
        default=2, description="more attempts after a failed delivery, with growing pauses"
    )
    queue_size: PositiveInt = Field(
        default=50, description="alerts waiting per destination; when full the oldest is dropped"
    )
    webhooks: tuple[Webhook, ...] = ()
    email: Email = Email()

    @field_validator("events")
    @classmethod
    def _distinct(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        repeated = sorted({event for event in value if value.count(event) > 1})
        if repeated:
            raise ValueError(f"{', '.join(repeated)} listed more than once; list each event once")
        return value
