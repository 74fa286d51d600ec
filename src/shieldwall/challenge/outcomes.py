"""What checking a challenge answer can come to: `Passed`, or `Refused` with a `Rejection` to log."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Rejection(StrEnum):
    """Why a token, answer or cookie was refused; one value per cause, so the log says which."""

    MALFORMED = "malformed"  # not a token of the expected kind, or the nonce is not a decimal number
    UNKNOWN_KEY = "unknown_key"  # names a key not accepted here: older than the previous period, or forged
    BAD_SIGNATURE = "bad_signature"  # the HMAC does not match: tampered with or forged
    EXPIRED = "expired"
    WRONG_PREFIX = "wrong_prefix"  # issued to another client network (a token passed around)
    WRONG_USER_AGENT = "wrong_user_agent"  # issued to another User-Agent
    INSUFFICIENT_WORK = "insufficient_work"  # the nonce's hash has too few leading zero bits
    REPLAYED = "replayed"  # already used once
    TOO_EARLY = "too_early"  # a no-JavaScript wait token presented before its wait was over


class Method(StrEnum):
    """How the visitor passed."""

    POW = "pow"  # the JavaScript proof of work
    WAIT = "wait"  # the no-JavaScript wait


@dataclass(frozen=True, slots=True)
class Passed:
    """A valid answer, now used up. The data plane sets a clearance cookie for `level` and answers 303 to
    `target` (path and query, always starting with one "/", never "//": see target.safe_target)."""

    target: bytes
    level: int
    method: Method
    difficulty: int  # the bits that were solved; 0 for the wait
    issued: int  # when the challenge was issued (epoch seconds): now - issued is the visitor's delay


@dataclass(frozen=True, slots=True)
class Refused:
    """An answer that does not clear the visitor. `target` is the token's own when the token was
    authentic (expired, replayed, too early, other client...), so a fresh challenge can keep the
    visitor's destination; "/" otherwise. `retry_in` is the whole seconds left for TOO_EARLY."""

    reason: Rejection
    target: bytes = b"/"
    retry_in: int = 0
