"""Reading Cache-Control directives, delta-seconds and HTTP dates (RFC 9111 1.2, 5.2; RFC 9110 5.6.7)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.utils import mktime_tz, parsedate_tz

# One list element: `token [ "=" ( token / quoted-string ) ]`, or nothing (empty elements are allowed).
_TCHAR = rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]"
_ELEMENT = re.compile(
    rb"[ \t]*(?:(" + _TCHAR + rb'+)[ \t]*(?:=[ \t]*("(?:[^"\\]|\\.)*"|' + _TCHAR + rb"*))?)?[ \t]*(?:,|\Z)"
)
_QUOTED_PAIR = re.compile(rb"\\(.)")
# RFC 9111 1.2.2: a delta-seconds too large to represent is taken as 2^31.
MAX_DELTA_SECONDS = 2**31


class Directives:
    """The directives of every Cache-Control field of a message, names lower-cased."""

    __slots__ = ("_args", "_conflicting")

    def __init__(self) -> None:
        self._args: dict[bytes, bytes | None] = {}
        self._conflicting: set[bytes] = set()

    def __contains__(self, name: bytes) -> bool:
        return name in self._args

    def add(self, name: bytes, arg: bytes | None) -> None:
        if name in self._args:
            if self._args[name] != arg:
                self._conflicting.add(name)
        else:
            self._args[name] = arg

    def seconds(self, name: bytes) -> int | None:
        """A delta-seconds argument; None when absent, malformed or given twice with different values
        (RFC 9111 4.2.1 lets a cache treat conflicting values as making the response stale)."""
        if name in self._conflicting:
            return None
        return delta_seconds(self._args.get(name))


def parse_directives(values: Iterable[bytes]) -> Directives | None:
    """All Cache-Control field values of one message; None if any of them is not a directive list."""
    found = Directives()
    for value in values:
        pos, end = 0, len(value)
        while pos < end:
            match = _ELEMENT.match(value, pos)
            if match is None:
                return None
            pos = match.end()
            name, arg = match[1], match[2]
            if name is None:
                continue
            if arg is not None and arg[:1] == b'"':
                arg = _QUOTED_PAIR.sub(rb"\1", arg[1:-1])
            found.add(name.lower(), arg)
    return found


def delta_seconds(arg: bytes | None) -> int | None:
    if arg is None or not arg.isdigit():
        return None
    return min(int(arg), MAX_DELTA_SECONDS)


def http_date(value: bytes) -> float | None:
    """Seconds since the epoch for any of the three HTTP-date forms; None when it is not a date."""
    try:
        parsed = parsedate_tz(value.decode("latin-1"))
        return None if parsed is None else float(mktime_tz(parsed))
    except (ValueError, OverflowError):
        return None
