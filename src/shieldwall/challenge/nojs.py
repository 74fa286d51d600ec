"""The no-JavaScript way through: a signed wait token that only becomes valid some seconds after issue.

The page's <noscript> part reloads /.shieldwall/verify?w=<token> after N seconds (meta refresh) and offers a
Continue button (a GET form) for browsers that ignore the refresh. The wait is the cost instead of the
proof of work: it is enforced by the server (the token carries its own ready time), so a bot gains
nothing by skipping the refresh. Like a challenge, the token is bound to the client, leads back to its
target and is single-use; a token presented too early is not used up, and the refusal says how many
seconds are left.

Wait token fields (after the common ones, see tokens.py): id, issued, ready, level, target.
"""

from __future__ import annotations

import math
import secrets
from typing import Final

from shieldwall.challenge.outcomes import Method, Passed, Refused, Rejection
from shieldwall.challenge.replay import ReplaySet
from shieldwall.challenge.target import safe_target
from shieldwall.challenge.tokens import Sealer

KIND: Final = "w"
DEFAULT_WAIT: Final = 5  # seconds
DEFAULT_TTL: Final = 300
_FIELDS: Final = 5


class NoScriptWait:
    __slots__ = ("replay", "sealer", "ttl", "wait")

    def __init__(
        self, sealer: Sealer, replay: ReplaySet, wait: int = DEFAULT_WAIT, ttl: int = DEFAULT_TTL
    ) -> None:
        if not 0 <= wait < ttl <= sealer.keyring.rotation:
            raise ValueError("need 0 <= wait < lifetime <= one key rotation period")
        self.sealer = sealer
        self.replay = replay
        self.wait = wait
        self.ttl = ttl

    def issue(self, target: bytes, prefix: str, user_agent: bytes | None, *, level: int, now: float) -> bytes:
        """A wait token for this client, usable from `wait` seconds after now until `ttl` after now.

        Times are whole seconds rounded down: the ready time is floor(now + wait), at most a second
        before the full wait, so a browser whose refresh fires `wait` seconds after it got the page (and
        so at least that long after issue) is never early."""
        fields = (
            secrets.token_urlsafe(9),
            str(math.floor(now)),
            str(math.floor(now + self.wait)),
            str(level),
            safe_target(target).decode("ascii"),
        )
        expires = math.floor(now) + self.ttl
        return self.sealer.seal(KIND, fields, prefix=prefix, user_agent=user_agent, expires=expires, now=now)

    def verify(self, token: bytes, prefix: str, user_agent: bytes | None, now: float) -> Passed | Refused:
        """Check a wait token: authentic, unexpired, this client's, its wait over, not used before."""
        opened = self.sealer.open(token, KIND, _FIELDS, now)
        if isinstance(opened, Rejection):
            return Refused(opened)
        token_id, issued, ready, level, target_text = opened.fields
        target = target_text.encode("ascii")
        reason = opened.refusal(prefix, user_agent, now)
        if reason is not None:
            return Refused(reason, target)
        if now < int(ready):
            return Refused(Rejection.TOO_EARLY, target, math.ceil(int(ready) - now))
        if not self.replay.first_use(KIND + token_id, opened.expires, now):
            return Refused(Rejection.REPLAYED, target)
        return Passed(target, int(level), Method.WAIT, 0, int(issued))
