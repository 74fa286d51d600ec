"""The clearance cookie: proof that this client passed a challenge, checked on every request a challenge
rule covers, so the check is cheap (no table, no I/O: one HMAC, see tokens.py).

Its value is a signed token of kind "k" with the client binding (prefix, User-Agent hash), the expiry and
one field of its own, the challenge level it was earned at. It is worthless to anyone else (another
prefix or browser), after it expires, and after its signing key leaves the keyring (keys.py): so its
lifetime is capped at one rotation period. The value is base64url and "." only: no padding "=", no
";", "," or space, so it needs no quoting in a Cookie header.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Final

from shieldwall.challenge.outcomes import Rejection
from shieldwall.challenge.tokens import Sealer

KIND: Final = "k"
DEFAULT_NAME: Final = "sw_clearance"
DEFAULT_MAX_AGE: Final = 3600  # an hour: a visitor solves at most one challenge an hour while it lasts
_FIELDS: Final = 1
_COOKIE_NAME: Final = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # an RFC 6265 / RFC 9110 token


class Clearance:
    __slots__ = ("_attributes", "_name_eq", "max_age", "name", "sealer")

    def __init__(
        self,
        sealer: Sealer,
        *,
        name: str = DEFAULT_NAME,
        max_age: int = DEFAULT_MAX_AGE,
        secure: bool = False,
    ) -> None:
        """`secure` adds the Secure attribute: set it when the site is served over TLS, so the browser
        never sends the cookie over plain HTTP."""
        if not _COOKIE_NAME.fullmatch(name):
            raise ValueError(f"cookie name {name!r} must be a token (letters, digits, !#$%&'*+-.^_`|~)")
        if not 0 < max_age <= sealer.keyring.rotation:
            raise ValueError("the clearance's max_age must be positive and at most one key rotation period")
        self.sealer = sealer
        self.name = name
        self.max_age = max_age
        self._name_eq = name.encode() + b"="
        self._attributes = b"; Max-Age=%d; Path=/; HttpOnly; SameSite=Lax%s" % (
            max_age,
            b"; Secure" if secure else b"",
        )

    def issue(self, prefix: str, user_agent: bytes | None, *, level: int, now: float) -> bytes:
        """A cookie value clearing this client up to `level` for `max_age` seconds."""
        expires = math.floor(now) + self.max_age
        return self.sealer.seal(
            KIND, (str(level),), prefix=prefix, user_agent=user_agent, expires=expires, now=now
        )

    def set_cookie(self, value: bytes) -> bytes:
        """The Set-Cookie header's value for a cookie value from `issue`."""
        return self._name_eq + value + self._attributes

    def verify(self, value: bytes, prefix: str, user_agent: bytes | None, now: float) -> int | None:
        """The level a cookie value clears this client for, or None when it is forged, tampered with,
        expired, signed by a key no longer accepted, or issued to another prefix or User-Agent."""
        opened = self.sealer.open(value, KIND, _FIELDS, now)
        if isinstance(opened, Rejection) or opened.refusal(prefix, user_agent, now) is not None:
            return None
        return int(opened.fields[0])

    def find(self, cookie_headers: Iterable[bytes]) -> bytes | None:
        """This cookie's value in the raw values of a request's Cookie header lines, or None.

        Per request, so it only searches bytes: the first "name=" at the start of the header or after
        ";" or a space, up to the next ";". Quotes are not removed: values this module issues never
        have any, and a quoted one then simply fails verification."""
        name_eq = self._name_eq
        for header in cookie_headers:
            start = header.find(name_eq)
            while start != -1:
                if start == 0 or header[start - 1] in b"; \t":
                    start += len(name_eq)
                    end = header.find(b";", start)
                    return header[start : end if end != -1 else len(header)].strip(b" \t")
                start = header.find(name_eq, start + 1)
        return None
