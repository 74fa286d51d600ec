"""The proof of work solved in Python, by exactly the search the page's script runs (page_source.py):
for tests, and for the drill's simulated visitors."""

from __future__ import annotations

import hashlib

from shieldwall.challenge.pow import meets_difficulty


def solve(challenge: bytes | str, difficulty: int) -> int:
    """The first nonce n = 0, 1, 2, ... such that SHA-256(challenge + decimal(n)) has at least
    `difficulty` leading zero bits: the same nonce the page's script finds."""
    data = challenge.encode("ascii") if isinstance(challenge, str) else challenge
    prefix = hashlib.sha256(data)  # the token is hashed once; each try only adds its digits
    nonce = 0
    while True:
        attempt = prefix.copy()
        attempt.update(b"%d" % nonce)
        if meets_difficulty(attempt.digest(), difficulty):
            return nonce
        nonce += 1
