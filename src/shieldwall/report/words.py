"""Numbers, times and durations as a report prints them: UTC always (a CERT compares reports from many
places), thousands separated, durations in words. One place, so every format says the same thing."""

from __future__ import annotations

import time
from typing import Final

from shieldwall.detector.events import Mode

MODE_WORDS: Final = {
    Mode.NORMAL: "normal",
    Mode.ELEVATED: "elevated (on guard)",
    Mode.UNDER_ATTACK: "under attack",
}


def utc(wall: float) -> str:
    """'2024-06-10 06:18:21 UTC'."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(wall))


def iso(wall: float) -> str:
    """'2024-06-10T06:18:21Z' (whole seconds: what ticketing systems and STIX readers parse)."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall))


def clock(wall: float, *, seconds: bool = True) -> str:
    """'06:18:21' (or '06:18'), UTC."""
    return time.strftime("%H:%M:%S" if seconds else "%H:%M", time.gmtime(wall))


_MONTHS: Final = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)  # fmt: skip  (not strftime's %B, which follows the locale)


def day(wall: float) -> str:
    """'10 June 2024', UTC, in English whatever the locale."""
    moment = time.gmtime(wall)
    return f"{moment.tm_mday} {_MONTHS[moment.tm_mon - 1]} {moment.tm_year}"


def _unit(count: int, name: str) -> str:
    return f"{count} {name}" if count == 1 else f"{count} {name}s"


def duration(seconds: float) -> str:
    """'45 seconds', '2 minutes 5 seconds', '1 hour 2 minutes', '3 days 4 hours': two units at most."""
    left = max(0, round(seconds))
    days, left = divmod(left, 86400)
    hours, left = divmod(left, 3600)
    minutes, secs = divmod(left, 60)
    parts = [(days, "day"), (hours, "hour"), (minutes, "minute"), (secs, "second")]
    while len(parts) > 1 and parts[0][0] == 0:
        parts.pop(0)
    first, second = parts[0], parts[1] if len(parts) > 1 else (0, "")
    return _unit(*first) + (f" {_unit(*second)}" if second[0] else "")


def count(number: float) -> str:
    """'17,600,000'."""
    return f"{round(number):,}"


def rate(per_second: float) -> str:
    """'5,012' or '3.5': whole numbers from 10 up."""
    return f"{per_second:,.0f}" if per_second >= 10 or per_second == 0 else f"{per_second:.1f}"


def percent(share: float) -> str:
    """'99.2%', '100%', '0.05%'; never rounds a share above 0 down to '0%' or below 1 up to '100%'."""
    value = share * 100
    if 0 < value < 0.1:
        return f"{value:.2f}%"
    text = f"{value:.1f}".removesuffix(".0")
    if text == "100" and share < 1:
        return "99.9%"
    return f"{text}%"


def millis(seconds: float) -> str:
    """'35 ms', '1,250 ms'."""
    return f"{seconds * 1000:,.0f} ms"


def plural(number: int, singular: str, many: str | None = None) -> str:
    """'1 signature', '3 signatures', '1,200 addresses'."""
    return f"{number:,} {singular if number == 1 else many or singular + 's'}"
