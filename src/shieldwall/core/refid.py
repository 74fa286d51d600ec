"""Short reference IDs that a visitor sees on an error page and an operator finds in the log."""

from __future__ import annotations

from random import getrandbits

REFERENCE_ID_LENGTH = 15  # "SW-" + 12 hex symbols


def new_reference_id() -> str:
    """48 random bits as 12 upper-case hex symbols, e.g. 'SW-7F3A9C2E01BD' (hex reads well over the phone).

    An ID names a decision; it is not a secret and grants nothing, so it comes from the `random` module
    (whose global generator reseeds itself in every forked worker) rather than os.urandom: one is made
    per refusal, and strace showed os.urandom adding a getrandom() syscall to every 429. timeit on
    Python 3.11 here: getrandbits 0.24 µs, os.urandom(6).hex() 0.50 µs, base32 via b32encode 2.45 µs."""
    return f"SW-{getrandbits(48):012X}"
