"""`[alerts]` in the configuration: what is refused, and how it reads; the SMTP password file's checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from shieldwall.alerts.alerter import read_password
from shieldwall.config import ConfigError, parse_config

SLACK = "https://hooks.slack.com/services/T0000/B0000/XXXX"


def problems(alerts: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config({"alerts": alerts})
    return caught.value.problems


def test_a_full_section_loads() -> None:
    settings = parse_config(
        {
            "alerts": {
                "name": "www.example.org",
                "events": ["opened", "closed"],
                "max_per_10_minutes": 3,
                "webhooks": [
                    {"url": SLACK, "format": "slack"},
                    {"url": "http://127.0.0.1:9000/hook", "headers": {"authorization": "Bearer x"}},
                ],
                "email": {
                    "host": "smtp.example.org",
                    "port": 587,
                    "starttls": True,
                    "username": "shield",
                    "password_file": "/etc/shieldwall/smtp-password",
                    "sender": "shield@example.org",
                    "to": ["soc@example.org"],
                },
            }
        }
    )
    alerts = settings.alerts
    assert [hook.format for hook in alerts.webhooks] == ["slack", "generic"]
    assert alerts.email.password_file == Path("/etc/shieldwall/smtp-password")
    assert alerts.events == ("opened", "closed")


def test_no_destination_by_default() -> None:
    alerts = parse_config({}).alerts
    assert alerts.webhooks == () and alerts.email.to == ()


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("hooks.slack.com/services/x", "a webhook URL starts with https://"),
        ("ftp://example.org/x", "a webhook URL starts with https://"),
        ("https:///services/x", "the URL has no host"),
        ("https://example.org:99999/x", "the port is not a number in 1-65535"),
    ],
)
def test_bad_webhook_urls(url: str, problem: str) -> None:
    [line] = problems({"webhooks": [{"url": url}]})
    assert line.startswith(f"alerts.webhooks[0].url: {problem}")


def test_a_webhook_needs_its_url_and_a_known_format() -> None:
    [missing] = problems({"webhooks": [{"format": "slack"}]})
    assert missing.startswith("alerts.webhooks[0].url:")
    [fmt] = problems({"webhooks": [{"url": SLACK, "format": "discord"}]})
    assert fmt.startswith("alerts.webhooks[0].format:") and '"teams"' in fmt


@pytest.mark.parametrize(
    ("headers", "problem"),
    [
        ({"content-type": "text/plain"}, "'content-type' is set by shieldwall for each request; remove it"),
        ({"Host": "evil"}, "'Host' is set by shieldwall for each request; remove it"),
        (
            {"x-token": "a\r\nX-Evil: 1"},
            "the value of 'x-token' holds a control character; write it on one line",
        ),
        ({"bad header": "x"}, "'bad header' is not a header name"),
    ],
)
def test_bad_webhook_headers(headers: dict[str, str], problem: str) -> None:
    [line] = problems({"webhooks": [{"url": SLACK, "headers": headers}]})
    assert line.startswith("alerts.webhooks[0].headers: ") and problem in line


@pytest.mark.parametrize(
    ("email", "problem"),
    [
        (
            {"starttls": True, "ssl": True},
            "starttls and ssl are both on; ssl is for port 465, starttls for 587: keep one",
        ),
        ({"username": "shield"}, "username and password_file go together; set both to log in, or neither"),
        ({"password_file": "/x"}, "username and password_file go together; set both to log in, or neither"),
        (
            {"host": "smtp.example.org", "username": "u", "password_file": "/x"},
            "logging in without TLS would send the password in clear; set starttls = true (port 587) "
            "or ssl = true (port 465)",
        ),
        ({"to": ["soc@example.org"]}, "to is set but sender is empty; set sender to the From address"),
    ],
)
def test_inconsistent_email_settings(email: dict[str, Any], problem: str) -> None:
    assert problems({"email": email}) == [f"alerts.email: {problem}"]


def test_logging_in_to_the_local_mail_server_needs_no_tls() -> None:
    for host in ("localhost", "127.0.0.1", "::1"):
        parse_config({"alerts": {"email": {"host": host, "username": "u", "password_file": "/x"}}})


@pytest.mark.parametrize(
    "address", ["Jane <jane@example.org>", "jane@example.org, evil@example.org", "jane", "a@b\r\nBcc: x@y"]
)
def test_addresses_are_plain_and_single(address: str) -> None:
    [line] = problems({"email": {"sender": "shield@example.org", "to": [address]}})
    assert line.startswith("alerts.email.to[0]: not an email address")
    assert line.endswith("; write it like soc@example.org, without a display name")


def test_events_are_known_and_listed_once() -> None:
    [unknown] = problems({"events": ["opened", "attack"]})
    assert unknown.startswith("alerts.events[1]:") and '"deescalated"' in unknown
    assert problems({"events": ["opened", "closed", "opened"]}) == [
        "alerts.events: opened listed more than once; list each event once"
    ]


def test_limits_are_checked() -> None:
    assert problems({"max_per_10_minutes": 0, "retries": 6}) == [
        "alerts.max_per_10_minutes: must be greater than 0 (got 0)",
        "alerts.retries: must be at most 5 (got 6)",
    ]


# --- the password file ---------------------------------------------------------------------------


def test_the_password_is_the_first_line_of_a_private_file(tmp_path: Path) -> None:
    path = tmp_path / "smtp-password"
    path.write_text("s3cret pass\nignored\n")
    path.chmod(0o600)
    assert read_password(path) == "s3cret pass"
    path.chmod(0o400)
    assert read_password(path) == "s3cret pass"


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_a_password_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "smtp-password"
    path.write_text("s3cret\n")
    path.chmod(mode)
    with pytest.raises(ValueError, match=rf"is readable by other users \(mode 0{mode:o}\); run chmod 600 "):
        read_password(path)


def test_a_missing_password_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"cannot read .*: No such file or directory; check the path"):
        read_password(tmp_path / "nope")
