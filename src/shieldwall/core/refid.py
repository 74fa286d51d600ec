"""Short reference IDs that a visitor sees on an error page and an operator finds in the log."""

from __future__ import annotations

import os

# Crockford's base32 alphabet: no I, L, O, U, so IDs read aloud over the phone survive.
_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_reference_id() -> str:
    """10 symbols = 50 random bits, e.g. 'SW-7F3K9Q2MXA'."""
    n = int.from_bytes(os.urandom(7), "big") >> 6
    chars = []
    for _ in range(10):
        n, r = divmod(n, 32)
        chars.append(_ALPHABET[r])
    return "SW-" + "".join(chars)
