"""The one URL the shield answers itself for challenges, and the reading of its query.

GET on purpose: the data plane answers it from the request head alone, without reading a body.
    /.shieldwall/verify?c=<challenge token>&n=<nonce>   the proof of work's answer (from the script)
    /.shieldwall/verify?w=<wait token>                  the no-JavaScript way (refresh or form)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from shieldwall.challenge.tokens import MAX_TOKEN

VERIFY_PATH: Final = "/.shieldwall/verify"
_MAX_QUERY: Final = MAX_TOKEN + 64


@dataclass(frozen=True, slots=True)
class VerifyQuery:
    challenge: bytes | None = None  # c
    nonce: bytes | None = None  # n
    wait: bytes | None = None  # w


_EMPTY: Final = VerifyQuery()


def parse_verify_query(query: bytes) -> VerifyQuery:
    """The c, n and w parameters of the verify URL's query (without "?"), first occurrence each.

    No percent-decoding: tokens and nonces are made only of characters that browsers never encode, so a
    percent-encoded value was not sent by our page and fails verification as it is. An over-long query
    yields nothing."""
    if len(query) > _MAX_QUERY:
        return _EMPTY
    found: dict[bytes, bytes] = {}
    for pair in query.split(b"&"):
        name, _, value = pair.partition(b"=")
        if name in (b"c", b"n", b"w"):
            found.setdefault(name, value)
    return VerifyQuery(found.get(b"c"), found.get(b"n"), found.get(b"w"))
