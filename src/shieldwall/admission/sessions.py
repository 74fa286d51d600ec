"""Who is logged in: session cookie values the origin itself set, through this shield.

A cookie's name proves nothing (a bot sends `Cookie: sessionid=x` as easily as a browser), so a request
counts as a logged-in user's only when its session cookie carries a value the origin handed out in a
`Set-Cookie` that passed through this worker. Values are kept as keyed 8-byte digests (never the
secrets themselves) in a bounded LRU table; a cookie the origin deletes (empty value, `Max-Age=0` or an
`Expires` in the past that we cannot cheaply judge: only the first two) is forgotten. After a restart the
table is empty, so logged-in users count as everyone else until they log in again: the cost of a
restart is priority, never access.

Workers get a client's whole /24 or /64 (SO_REUSEPORT steering), so the worker that saw the login sees
the later requests of that user too.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Iterable

from shieldwall.http1.cookies import cookie_pairs, set_cookie_pair


class SessionTable:
    def __init__(self, names: Iterable[str], capacity: int = 100_000) -> None:
        self.names = frozenset(name.encode() for name in names)
        self._capacity = capacity
        self._key = os.urandom(16)  # digests are comparable only within this process
        self._seen: OrderedDict[bytes, None] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def _digest(self, value: bytes) -> bytes:
        return hashlib.blake2b(value, digest_size=8, key=self._key).digest()

    def learn(self, set_cookie: bytes) -> None:
        """One Set-Cookie header value from the origin's response."""
        name, value, attributes = set_cookie_pair(set_cookie)
        if name not in self.names:
            return
        digest = self._digest(value)
        if not value or b"max-age=0" in attributes.replace(b" ", b""):
            self._seen.pop(digest, None)
            return
        self._seen[digest] = None
        self._seen.move_to_end(digest)
        if len(self._seen) > self._capacity:
            self._seen.popitem(last=False)

    def logged_in(self, cookie_headers: Iterable[bytes]) -> bool:
        """Whether a request's Cookie header values carry a session value the origin set."""
        for header in cookie_headers:
            for name, value in cookie_pairs(header):
                if name in self.names and self._digest(value) in self._seen:
                    return True
        return False
