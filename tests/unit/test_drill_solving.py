"""The drill's visitors get past the real challenge page as a browser would: the proof of work found with
challenge.solver and accepted by the challenge service, or the no-JavaScript wait; the redirect to the
page first asked for followed; anything that is no challenge left alone."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from shieldwall.challenge.difficulty import DifficultyPolicy
from shieldwall.challenge.keys import Keyring, MasterSecrets
from shieldwall.challenge.outcomes import Method, Passed
from shieldwall.challenge.service import ChallengeService, ChallengeSettings
from shieldwall.drill.client import Response
from shieldwall.drill.solving import ChallengeSolver, parse_challenge

NOW = 1_700_000_000.0
PREFIX = "127.16.0.0/24"
UA = b"Mozilla/5.0 Chrome/124"
HTML = (b"content-type", b"text/html; charset=utf-8")


def service() -> ChallengeService:
    keyring = Keyring(MasterSecrets(1, bytes(range(32))))
    return ChallengeService(
        keyring, ChallengeSettings(difficulty=DifficultyPolicy(base=10, cap=20), wait_seconds=3)
    )


def page_response(svc: ChallengeService) -> Response:
    body = svc.challenge_page(
        target=b"/donate", prefix=PREFIX, user_agent=UA, level=0, offences=0, refid="SW-1", now=NOW
    )
    return Response("GET", "/donate", 403, (HTML,), body, 0.01)


class VerifyingSession:
    """Answers the verify URL with the real ChallengeService, and the page it redirects to with 200."""

    def __init__(self, svc: ChallengeService) -> None:
        self.svc = svc
        self.asked: list[str] = []
        self.outcomes: list[object] = []

    async def request(
        self, method: str, target: str, headers: Sequence[tuple[str, str]] = (), body: bytes = b""
    ) -> Response:
        self.asked.append(target)
        if target.startswith("/.shieldwall/verify?"):
            outcome = self.svc.verify(target.partition("?")[2].encode(), PREFIX, UA, NOW + 5)
            self.outcomes.append(outcome)
            if isinstance(outcome, Passed):
                return Response(method, target, 303, ((b"location", outcome.target),), b"", 0.001)
            return Response(method, target, 403, (HTML,), b"again", 0.001)
        return Response(method, target, 200, (HTML,), b"<h1>Donate</h1>", 0.001)

    async def close(self) -> None:
        pass


def test_the_page_is_read_for_its_challenge_and_its_wait():
    page = parse_challenge(page_response(service()))
    assert page is not None
    assert page.difficulty == 10 and page.wait_seconds == 3 and page.challenge and page.wait_token


@pytest.mark.parametrize(
    "response",
    [
        Response("GET", "/", 200, (HTML,), b'<main id="sw" data-c="x" data-d="9">', 0.0),
        Response("GET", "/", 403, (HTML,), b"<h1>Forbidden</h1>", 0.0),
        Response("GET", "/", 403, ((b"content-type", b"application/json"),), b"{}", 0.0),
        Response("GET", "/", 0, (), b"", 0.0, "timeout"),
    ],
)
def test_anything_else_is_no_challenge(response):
    assert parse_challenge(response) is None
    assert asyncio.run(ChallengeSolver()(response, VerifyingSession(service()))) is None


def test_a_visitor_with_javascript_solves_the_proof_of_work():
    svc = service()
    session = VerifyingSession(svc)
    solver = ChallengeSolver(nojs_share=0.0)
    final = asyncio.run(solver(page_response(svc), session))
    assert final is not None and final.status == 200 and final.target == "/donate"
    (outcome,) = session.outcomes
    assert isinstance(outcome, Passed) and outcome.method is Method.POW
    assert session.asked[-1] == "/donate"
    assert (solver.solved, solver.waited, solver.failed) == (1, 0, 0)


def test_a_visitor_without_javascript_waits_then_continues():
    svc = service()
    session = VerifyingSession(svc)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    solver = ChallengeSolver(nojs_share=1.0, sleep=sleep)
    final = asyncio.run(solver(page_response(svc), session))
    assert final is not None and final.status == 200
    assert slept == [3]
    assert session.asked[0].startswith("/.shieldwall/verify?w=")
    (outcome,) = session.outcomes
    assert isinstance(outcome, Passed) and outcome.method is Method.WAIT
    assert (solver.solved, solver.waited) == (0, 1)


def test_a_visitor_keeps_its_way_and_a_refused_answer_is_a_failure():
    svc = service()
    solver = ChallengeSolver(nojs_share=0.5, seed=3, sleep=lambda _s: asyncio.sleep(0))
    sessions = [VerifyingSession(svc) for _ in range(40)]

    async def twice() -> None:
        for session in sessions:
            await solver(page_response(svc), session)
            await solver(page_response(svc), session)

    asyncio.run(twice())
    ways = [{target.split("?")[1][0] for target in s.asked if "verify" in target} for s in sessions]
    assert all(len(way) == 1 for way in ways)  # each visitor always the same way
    assert 5 < sum(way == {"w"} for way in ways) < 35  # about half without JavaScript
    forged = Response("GET", "/", 403, (HTML,), b'<main id="sw" data-c="bogus" data-d="1">', 0.0)
    session = VerifyingSession(svc)
    final = asyncio.run(solver(forged, session))
    assert final is not None and final.status == 403 and solver.failed == 1


def test_the_share_without_javascript_is_bounded():
    with pytest.raises(ValueError, match="nojs_share"):
        ChallengeSolver(nojs_share=1.5)
