"""How the drill's visitors get past a challenge page, as a browser does: the `solve_challenge` hook of
visitors.Population.

The page (challenge/page_source.py) carries the token and the difficulty in `data-c` and `data-d`,
and the no-JavaScript wait token in its <noscript> refresh (`url=/.shieldwall/verify?w=...`). A visitor
with JavaScript finds the nonce with challenge.solver (exactly the search the page's script runs) and
goes to `/.shieldwall/verify?c=TOKEN&n=NONCE`; a visitor without it waits the page's seconds and goes
to `?w=TOKEN`. Either way the shield answers 303 to the page first asked for, with the clearance
cookie, which lands in the visitor's jar; the hook follows that redirect and returns the page.

Which visitors have no JavaScript is drawn once per session (`nojs_share`, seeded), so one visitor
always behaves the same way. The nonce search runs in a thread: one visitor solving does not stop the
others' clocks for the length of its search.
"""

from __future__ import annotations

import asyncio
import random
import re
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from html import unescape
from typing import Final

from shieldwall.challenge.endpoint import VERIFY_PATH
from shieldwall.challenge.solver import solve
from shieldwall.drill.client import Response
from shieldwall.drill.runtime import Requester
from shieldwall.drill.visitors import browser_headers

MAX_DIFFICULTY: Final = 26  # the shield's own ceiling (challenge.max_difficulty ≤ 26)
MAX_WAIT: Final = 60.0  # the shield's own ceiling for challenge.wait_seconds
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_PAGE: Final = re.compile(rb'<main id="sw" data-c="([^"]*)" data-d="([0-9]{1,3})"')
_WAIT: Final = re.compile(rb'http-equiv="refresh" content="([0-9]{1,3});url=[^"?]*\?w=([^"]*)"')


@dataclass(frozen=True, slots=True)
class ChallengePage:
    """What a challenge page asks: the proof of work, and the no-JavaScript alternative."""

    challenge: str
    difficulty: int
    wait_token: str | None
    wait_seconds: int


def parse_challenge(response: Response) -> ChallengePage | None:
    """The challenge a response carries, or None when it is not a shieldwall challenge page."""
    if response.status != 403 or not (response.header(b"content-type") or b"").startswith(b"text/html"):
        return None
    page = _PAGE.search(response.body)
    if page is None:
        return None
    wait = _WAIT.search(response.body)
    return ChallengePage(
        challenge=unescape(page.group(1).decode("ascii")),
        difficulty=int(page.group(2)),
        wait_token=None if wait is None else unescape(wait.group(2).decode("ascii")),
        wait_seconds=0 if wait is None else int(wait.group(1)),
    )


@dataclass
class ChallengeSolver:
    """The solve_challenge hook: None for a response that is no challenge, else the response after
    solving it (the page first asked for, or whatever the shield answered instead)."""

    nojs_share: float = 0.0
    seed: int = 1
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    solved: int = 0
    waited: int = 0
    failed: int = 0
    _rng: random.Random = field(init=False, repr=False)
    _nojs: weakref.WeakKeyDictionary[Requester, bool] = field(
        init=False, repr=False, default_factory=weakref.WeakKeyDictionary
    )

    def __post_init__(self) -> None:
        if not 0.0 <= self.nojs_share <= 1.0:
            raise ValueError("nojs_share must be within 0..1")
        self._rng = random.Random(self.seed)

    async def __call__(self, response: Response, session: Requester) -> Response | None:
        page = parse_challenge(response)
        if page is None:
            return None
        if page.difficulty > MAX_DIFFICULTY or page.wait_seconds > MAX_WAIT:
            self.failed += 1
            return response  # not a page our shield sends: give up as a visitor would
        nojs = self._nojs.get(session)
        if nojs is None:
            nojs = self._nojs[session] = self._rng.random() < self.nojs_share
        if nojs and page.wait_token is not None:
            await self.sleep(page.wait_seconds)
            answer = f"{VERIFY_PATH}?w={page.wait_token}"
            self.waited += 1
        else:
            loop = asyncio.get_running_loop()
            nonce = await loop.run_in_executor(None, solve, page.challenge, page.difficulty)
            answer = f"{VERIFY_PATH}?c={page.challenge}&n={nonce}"
            self.solved += 1
        verified = await session.request("GET", answer, browser_headers("document"))
        location = verified.header(b"location")
        if verified.status not in _REDIRECTS or location is None or not location.startswith(b"/"):
            self.failed += 1
            return verified
        return await session.request("GET", location.decode("latin-1"), browser_headers("document"))
