"""The proof-of-work challenge: a signed token, and the check of a visitor's answer to it.

The page's script looks for the first nonce n = 0, 1, 2, ... such that SHA-256(token + decimal(n)) has at
least `difficulty` leading zero bits (2**difficulty tries on average), then loads
GET /.shieldwall/verify?c=<token>&n=<n>. Checking costs the server one SHA-256 and one HMAC; the token
names its client (prefix and User-Agent), so one solution cannot be shared between clients, and the
replay set lets it be used once.

Challenge token fields (after the common ones, see tokens.py): id, issued, difficulty, level, target.
"""

from __future__ import annotations

import hashlib
import math
import secrets
from typing import Final

from shieldwall.challenge.outcomes import Method, Passed, Refused, Rejection
from shieldwall.challenge.replay import ReplaySet
from shieldwall.challenge.target import safe_target
from shieldwall.challenge.tokens import Sealer

KIND: Final = "c"
MAX_DIFFICULTY: Final = 32  # far beyond any sane setting (difficulty.py caps at 22); keeps shifts sane
MAX_NONCE_DIGITS: Final = 15  # the script counts in doubles; 10**15 tries would take years
DEFAULT_TTL: Final = 600  # seconds to solve and submit: a phone needs minutes at the cap (difficulty.py)
_FIELDS: Final = 5


def meets_difficulty(digest: bytes, difficulty: int) -> bool:
    """True when the 32-byte `digest` starts with at least `difficulty` zero bits."""
    return int.from_bytes(digest, "big") >> (256 - difficulty) == 0


class ProofOfWork:
    __slots__ = ("replay", "sealer", "ttl")

    def __init__(self, sealer: Sealer, replay: ReplaySet, ttl: int = DEFAULT_TTL) -> None:
        if not 0 < ttl <= sealer.keyring.rotation:
            raise ValueError("a challenge's lifetime must be positive and at most one key rotation period")
        self.sealer = sealer
        self.replay = replay
        self.ttl = ttl

    def issue(
        self,
        target: bytes,
        prefix: str,
        user_agent: bytes | None,
        *,
        difficulty: int,
        level: int,
        now: float,
    ) -> bytes:
        """A challenge token for this client, valid for `ttl` seconds, leading back to `target` (made safe
        by target.safe_target). Raises ValueError for a difficulty outside 0..MAX_DIFFICULTY."""
        if not 0 <= difficulty <= MAX_DIFFICULTY:
            raise ValueError(f"difficulty must be 0..{MAX_DIFFICULTY} bits, not {difficulty}")
        issued = math.floor(now)
        fields = (
            secrets.token_urlsafe(9),
            str(issued),
            str(difficulty),
            str(level),
            safe_target(target).decode("ascii"),
        )
        return self.sealer.seal(
            KIND, fields, prefix=prefix, user_agent=user_agent, expires=issued + self.ttl, now=now
        )

    def verify(
        self, token: bytes, nonce: bytes, prefix: str, user_agent: bytes | None, now: float
    ) -> Passed | Refused:
        """Check an answer: token authentic, unexpired, this client's; the nonce a canonical decimal whose
        hash has enough zero bits; the token not used before. A Passed answer is used up."""
        opened = self.sealer.open(token, KIND, _FIELDS, now)
        if isinstance(opened, Rejection):
            return Refused(opened)
        token_id, issued, difficulty, level, target_text = opened.fields
        target = target_text.encode("ascii")
        reason = opened.refusal(prefix, user_agent, now)
        if reason is not None:
            return Refused(reason, target)
        if not (
            0 < len(nonce) <= MAX_NONCE_DIGITS and nonce.isdigit() and (nonce[0] != 0x30 or nonce == b"0")
        ):
            return Refused(Rejection.MALFORMED, target)  # the script sends String(n): no sign, no 0 prefix
        bits = int(difficulty)
        if not meets_difficulty(hashlib.sha256(token + nonce).digest(), bits):
            return Refused(Rejection.INSUFFICIENT_WORK, target)
        if not self.replay.first_use(KIND + token_id, opened.expires, now):
            return Refused(Rejection.REPLAYED, target)
        return Passed(target, int(level), Method.POW, bits, int(issued))
