"""Everything the data plane asks of the challenge package, for one worker: the page for a challenged
request, the answer at /.shieldwall/verify, and the clearance cookie checked on later requests.

A worker builds one ChallengeService from the keyring (keys.py) and the settings; the service owns the
worker's replay set. Sans-io: every call takes `now` in wall-clock epoch seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from shieldwall.challenge import clearance, nojs, pow, replay
from shieldwall.challenge.clearance import Clearance
from shieldwall.challenge.difficulty import DifficultyPolicy
from shieldwall.challenge.endpoint import parse_verify_query
from shieldwall.challenge.keys import Keyring
from shieldwall.challenge.nojs import NoScriptWait
from shieldwall.challenge.outcomes import Passed, Refused, Rejection
from shieldwall.challenge.page import ChallengePage
from shieldwall.challenge.pow import ProofOfWork
from shieldwall.challenge.replay import ReplaySet
from shieldwall.challenge.tokens import Sealer


@dataclass(frozen=True, slots=True)
class ChallengeSettings:
    difficulty: DifficultyPolicy = field(default_factory=DifficultyPolicy)
    challenge_ttl: int = pow.DEFAULT_TTL  # seconds to solve and submit the proof of work
    wait_seconds: int = nojs.DEFAULT_WAIT  # the no-JavaScript wait
    wait_ttl: int = nojs.DEFAULT_TTL
    cookie_name: str = clearance.DEFAULT_NAME
    cookie_max_age: int = clearance.DEFAULT_MAX_AGE  # at most the key rotation period
    secure_cookie: bool = False  # True when the site is served over TLS
    replay_entries: int = replay.DEFAULT_MAX_ENTRIES


class ChallengeService:
    __slots__ = ("clearance", "difficulty", "page", "pow", "wait")

    def __init__(self, keyring: Keyring, settings: ChallengeSettings | None = None) -> None:
        """Raises ValueError when the settings do not fit the keyring (a lifetime over one rotation)."""
        settings = settings or ChallengeSettings()
        sealer = Sealer(keyring)
        used = ReplaySet(settings.replay_entries)  # ids are random and prefixed by kind: one set serves both
        self.difficulty = settings.difficulty
        self.pow = ProofOfWork(sealer, used, settings.challenge_ttl)
        self.wait = NoScriptWait(sealer, used, settings.wait_seconds, settings.wait_ttl)
        self.clearance = Clearance(
            sealer, name=settings.cookie_name, max_age=settings.cookie_max_age, secure=settings.secure_cookie
        )
        self.page = ChallengePage()

    def challenge_page(
        self,
        *,
        target: bytes,
        prefix: str,
        user_agent: bytes | None,
        level: int,
        offences: int,
        refid: str,
        now: float,
    ) -> bytes:
        """The page's body for a request to `target` (its raw path and query) that must be challenged:
        a proof of work at the difficulty for `level` and `offences`, and the no-JavaScript wait."""
        difficulty = self.difficulty.bits(level, offences)
        return self.page.render(
            challenge=self.pow.issue(target, prefix, user_agent, difficulty=difficulty, level=level, now=now),
            difficulty=difficulty,
            wait_token=self.wait.issue(target, prefix, user_agent, level=level, now=now),
            wait_seconds=self.wait.wait,
            refid=refid,
        )

    def verify(self, query: bytes, prefix: str, user_agent: bytes | None, now: float) -> Passed | Refused:
        """The answer carried by the verify URL's query: c and n (proof of work) or w (wait)."""
        answer = parse_verify_query(query)
        if answer.challenge is not None and answer.nonce is not None:
            return self.pow.verify(answer.challenge, answer.nonce, prefix, user_agent, now)
        if answer.wait is not None:
            return self.wait.verify(answer.wait, prefix, user_agent, now)
        return Refused(Rejection.MALFORMED)

    def set_cookie(self, passed: Passed, prefix: str, user_agent: bytes | None, now: float) -> bytes:
        """The Set-Cookie value to send with the 303 to `passed.target`."""
        return self.clearance.set_cookie(
            self.clearance.issue(prefix, user_agent, level=passed.level, now=now)
        )

    def cleared_level(
        self, cookie_headers: Iterable[bytes], prefix: str, user_agent: bytes | None, now: float
    ) -> int | None:
        """The level this request's clearance cookie is good for (it passes challenges at that level and
        below), or None without a valid one. `cookie_headers`: the raw values of its Cookie lines."""
        value = self.clearance.find(cookie_headers)
        return None if value is None else self.clearance.verify(value, prefix, user_agent, now)
