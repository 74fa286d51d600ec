"""The header-order fingerprint of a request: 8 hex digits of a hash of the lower-cased header names in
the order received, then the flags of the volatile headers present.

HTTP libraries and bot frameworks send their own fixed order (python-requests: user-agent,
accept-encoding, accept, connection), so a botnet that copies a browser's User-Agent and Accept-Language
still differs here unless it copies the order too. Volatile headers are those a browser sends on some
requests and not others (a first visit has no Cookie, a reload adds Cache-Control): they are left out of
the hash, so one browser build keeps one hash, and their presence is kept as flags after a "+":
c cookie, r referer, a authorization, i conditional request, n no-cache.

Used by attack signatures (detector/features.py) and by limits counted per fingerprint (policy/limit.py).
"""

from __future__ import annotations

import hashlib
from typing import Final

VOLATILE: Final = {
    b"cookie": "c",
    b"referer": "r",
    b"authorization": "a",
    b"if-none-match": "i",
    b"if-modified-since": "i",
    b"if-match": "i",
    b"if-unmodified-since": "i",
    b"if-range": "i",
    b"cache-control": "n",
    b"pragma": "n",
}


def header_fingerprint(headers: tuple[tuple[bytes, bytes], ...]) -> str:
    """`headers`: (lower-cased name, value) in the order received, as RequestView holds them."""
    names: list[bytes] = []
    flags = ""
    for name, _ in headers:
        flag = VOLATILE.get(name)
        if flag is None:
            names.append(name)
        elif flag not in flags:
            flags += flag
    return order_hash(names) + ("+" + "".join(sorted(flags)) if flags else "")


def order_hash(names: list[bytes]) -> str:
    """A stable short hash (blake2b, not hash(): the same order must give the same value in every
    process and after a restart, because signature ids are made from it)."""
    return hashlib.blake2b(b"\n".join(names), digest_size=4).hexdigest()
