"""Challenges wired to the data plane (shieldwall.challenge does the cryptography, sans-io):

- the gate the policy asks before a challenge rule challenges (`passes`): a valid clearance cookie, a
  route exempt from challenges (feeds, APIs), or a verified search-engine crawler lets a request through;
- the responses the shield writes itself: the challenge page (403, never cached) and the answer at
  /.shieldwall/verify (303 to the original target with the clearance cookie, or the page again).

Crawler verification needs DNS, which is I/O: a claimed crawler's first request is challenged while a
background lookup (bounded in number and time by the CrawlerVerifier) finds out; its later requests pass
once it is verified. Search engines retry, and their crawlers are rarely challenged more than once a day.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import re
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from shieldwall.challenge.difficulty import DifficultyPolicy
from shieldwall.challenge.endpoint import VERIFY_PATH
from shieldwall.challenge.keys import Keyring, load_or_create
from shieldwall.challenge.outcomes import Passed, Refused, Rejection
from shieldwall.challenge.page import CONTENT_TYPE
from shieldwall.challenge.service import ChallengeService, ChallengeSettings
from shieldwall.core.clock import Clock
from shieldwall.http1.forwarding import status_line
from shieldwall.net.client_identity import client_prefix
from shieldwall.net.crawlers import CrawlerStatus, CrawlerVerifier, claimed_crawler, load_crawler_ranges
from shieldwall.policy.decision import RequestView
from shieldwall.policy.paths import normalise_path

if TYPE_CHECKING:
    from pathlib import Path

    from shieldwall.config.schema import Settings
    from shieldwall.dataplane.exchange import Exchange
    from shieldwall.http1.request import RequestHead

log = logging.getLogger("shieldwall.challenge")

VERIFY = VERIFY_PATH.encode()
SECRET_FILE = ("challenge", "secret.json")  # under server.state_dir
# Answers that only a forger sends: they count as offences. An expired token, one from another network
# (a phone changing networks) or another User-Agent, or a wait cut short is a visitor's bad luck.
_FORGERIES = frozenset(
    (
        Rejection.MALFORMED,
        Rejection.UNKNOWN_KEY,
        Rejection.BAD_SIGNATURE,
        Rejection.INSUFFICIENT_WORK,
        Rejection.REPLAYED,
    )
)

Resolver = Callable[[str], Awaitable[Mapping[str, Sequence[str]]]]


def secret_path(state_dir: Path) -> Path:
    return state_dir.joinpath(*SECRET_FILE)


class Challenges:
    """One worker's challenges (see the module docstring)."""

    def __init__(self, settings: Settings, clock: Clock, loop: asyncio.AbstractEventLoop) -> None:
        cfg = settings.challenge
        self.clock = clock
        self.loop = loop
        # The supervisor creates the secret before forking; load_or_create also serves a lone server.
        keyring = Keyring(load_or_create(secret_path(settings.server.state_dir)), cfg.key_rotation)
        self.service = ChallengeService(
            keyring,
            ChallengeSettings(
                difficulty=DifficultyPolicy(base=cfg.difficulty, cap=cfg.max_difficulty),
                wait_seconds=cfg.wait_seconds,
                cookie_name=cfg.cookie_name,
                cookie_max_age=cfg.clearance_seconds,
            ),
        )
        self._exempt = re.compile(
            b"|".join(fnmatch.translate(glob).encode() for glob in cfg.exempt_paths) or b"(?!)"
        ).fullmatch
        crawlers = settings.crawlers
        self.crawlers = (
            CrawlerVerifier(
                ranges={name: load_crawler_ranges(path) for name, path in crawlers.ranges.items()},
                dns=crawlers.dns,
                lookup_timeout=crawlers.dns_timeout,
            )
            if crawlers.verify
            else None
        )
        self.resolve: Resolver = self._system_resolve
        self.level = 0  # the threat level (0 normal, 1 elevated, 2 under attack): the detector sets it
        self.lookups: set[asyncio.Task[None]] = set()

    # ---------------------------------------------------------------- the policy's gate

    def passes(self, view: RequestView) -> bool:
        """Whether a request passes a challenge rule without the challenge."""
        if self._exempt(normalise_path(view.path)) is not None:
            return True
        user_agent = view.header(b"user-agent")
        cookies = [value for name, value in view.headers if name == b"cookie"]
        now = self.clock.wall()
        if cookies and self.service.cleared_level(cookies, view.prefix, user_agent, now) is not None:
            return True
        return user_agent is not None and self._verified_crawler(view.client_ip, user_agent)

    def cleared(self, ex: Exchange) -> bool:
        """Whether the exchange's request carries a valid clearance cookie (for admission priority)."""
        head = ex.head
        assert head is not None
        cookies = head.values(b"cookie")
        if not cookies:
            return False
        prefix = ex.client.prefix if ex.client_ip == ex.client.client_ip else client_prefix(ex.client_ip)
        now = self.clock.wall()
        return self.service.cleared_level(cookies, prefix, head.header(b"user-agent"), now) is not None

    def _verified_crawler(self, ip: str, user_agent: bytes) -> bool:
        verifier = self.crawlers
        if verifier is None:
            return False
        crawler = claimed_crawler(user_agent)
        if crawler is None:
            return False
        now = self.clock.monotonic()
        status = verifier.status(ip, crawler, now)
        if status is CrawlerStatus.UNKNOWN and verifier.begin(ip, crawler, now):
            task = self.loop.create_task(self._look_up(ip))
            self.lookups.add(task)
            task.add_done_callback(self.lookups.discard)
        return status is CrawlerStatus.VERIFIED

    async def _look_up(self, ip: str) -> None:
        verifier = self.crawlers
        assert verifier is not None
        try:
            resolved = await asyncio.wait_for(self.resolve(ip), verifier.lookup_timeout)
        except (TimeoutError, OSError) as exc:
            log.info("crawler check of %s failed: %s", ip, exc)
            verifier.fail(ip, self.clock.monotonic())
            return
        verifier.complete(ip, resolved, self.clock.monotonic())

    async def _system_resolve(self, ip: str) -> Mapping[str, Sequence[str]]:
        """The address's PTR name (if it is a crawler's) and that name's addresses, from the system's
        resolver. A name that does not exist is an answer ({}), not an error."""
        try:
            host, _ = await self.loop.getnameinfo((ip, 0), socket.NI_NAMEREQD)
        except socket.gaierror:
            return {}
        assert self.crawlers is not None
        resolved: dict[str, list[str]] = {}
        for name in self.crawlers.names_to_resolve([host]):
            try:
                infos = await self.loop.getaddrinfo(name, None, type=socket.SOCK_STREAM)
            except socket.gaierror:
                infos = []
            resolved[name] = [str(info[4][0]) for info in infos]
        return resolved

    # ---------------------------------------------------------------- the shield's own responses

    def page(self, head: RequestHead, prefix: str, offences: int, ref: str, keep_alive: bool) -> bytes:
        """The challenge page for a request that a challenge rule stopped."""
        body = self.service.challenge_page(
            target=head.target,
            prefix=prefix,
            user_agent=head.header(b"user-agent"),
            level=self.level,
            offences=offences,
            refid=ref,
            now=self.clock.wall(),
        )
        return _response(403, body, ref, keep_alive=keep_alive, head_only=head.method == b"HEAD")

    def verify(
        self, head: RequestHead, prefix: str, offences: int, ref: str, *, keep_alive: bool, secure: bool
    ) -> tuple[bytes, Passed | Refused]:
        """The answer at /.shieldwall/verify: 303 to the original target with a clearance cookie, or the
        challenge page again (for the token's own target when the token was authentic)."""
        user_agent = head.header(b"user-agent")
        now = self.clock.wall()
        query = head.target.partition(b"?")[2]
        outcome = self.service.verify(query, prefix, user_agent, now)
        if isinstance(outcome, Passed):
            cookie = self.service.set_cookie(outcome, prefix, user_agent, now)
            if secure:
                cookie += b"; Secure"
            extra = b"Location: %s\r\nSet-Cookie: %s\r\n" % (outcome.target, cookie)
            return _response(303, b"", ref, keep_alive=keep_alive, head_only=False, extra=extra), outcome
        body = self.service.challenge_page(
            target=outcome.target,
            prefix=prefix,
            user_agent=user_agent,
            level=self.level,
            offences=offences,
            refid=ref,
            now=now,
        )
        extra = b""
        if outcome.reason is Rejection.TOO_EARLY:  # the same token works in a moment: come back then
            extra = b"Refresh: %d; url=%s\r\n" % (outcome.retry_in, head.target)
        head_only = head.method == b"HEAD"
        return _response(403, body, ref, keep_alive=keep_alive, head_only=head_only, extra=extra), outcome

    @staticmethod
    def is_forgery(outcome: Passed | Refused) -> bool:
        return isinstance(outcome, Refused) and outcome.reason in _FORGERIES


def is_verify_request(head: RequestHead) -> bool:
    target = head.target
    return target.startswith(VERIFY) and target[len(VERIFY) : len(VERIFY) + 1] in (b"", b"?")


def _response(
    status: int, body: bytes, ref: str, *, keep_alive: bool, head_only: bool, extra: bytes = b""
) -> bytes:
    head = b"".join(
        (
            status_line(status),
            b"Content-Type: %s\r\nContent-Length: %d\r\nCache-Control: no-store\r\n"
            % (CONTENT_TYPE, len(body)),
            b"X-Shieldwall-Ref: %s\r\n" % ref.encode(),
            extra,
            b"Connection: keep-alive\r\n\r\n" if keep_alive else b"Connection: close\r\n\r\n",
        )
    )
    return head if head_only else head + body
