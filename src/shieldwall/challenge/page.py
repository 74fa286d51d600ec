"""The challenge page, rendered per request from static parts built once: a request only pays for
escaping and joining its five values (the token, the difficulty, the wait token and seconds, the
reference ID). See page_source.py for the page itself."""

from __future__ import annotations

import re
from html import escape
from typing import Final

from shieldwall.challenge.endpoint import VERIFY_PATH
from shieldwall.challenge.page_source import PAGE_TEMPLATE

CONTENT_TYPE: Final = b"text/html; charset=utf-8"
_SLOTS: Final = ("CHALLENGE", "DIFFICULTY", "WAIT_TOKEN", "WAIT_SECONDS", "REFID")
_MARKER: Final = re.compile(r"@(" + "|".join(_SLOTS) + r")@")


class ChallengePage:
    """A page template split once into static byte strings and the slots between them."""

    __slots__ = ("_slots", "_static")

    def __init__(self) -> None:
        parts = _MARKER.split(PAGE_TEMPLATE.replace("@VERIFY@", escape(VERIFY_PATH)))
        self._static = tuple(part.encode() for part in parts[0::2])
        self._slots = tuple(_SLOTS.index(name) for name in parts[1::2])

    def render(
        self, *, challenge: bytes, difficulty: int, wait_token: bytes, wait_seconds: int, refid: str
    ) -> bytes:
        """The page's body (the data plane adds the head: status, CONTENT_TYPE, Cache-Control: no-store)."""
        values = (
            escape(challenge.decode("ascii")).encode(),
            b"%d" % difficulty,
            escape(wait_token.decode("ascii")).encode(),
            b"%d" % wait_seconds,
            escape(refid).encode(),
        )
        static = self._static
        out = [static[0]]
        for index, slot in enumerate(self._slots, 1):
            out.append(values[slot])
            out.append(static[index])
        return b"".join(out)
