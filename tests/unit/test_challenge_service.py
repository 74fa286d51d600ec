"""The facade a worker uses, end to end without a browser: a challenged request gets the page, the page's
answer (solved here in Python) passes at the verify URL once, the cookie it earns clears later requests,
and the no-JavaScript way works too."""

from __future__ import annotations

import re
from html import unescape

import pytest

from shieldwall.challenge.keys import Keyring, MasterSecrets
from shieldwall.challenge.outcomes import Method, Passed, Refused, Rejection
from shieldwall.challenge.service import ChallengeService, ChallengeSettings
from shieldwall.challenge.solver import solve

NOW = 1_700_000_000.0
PREFIX = "198.51.100.0/24"
UA = b"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Safari/605.1.15"
KEYRING = Keyring(MasterSecrets(1, bytes(range(32))))


def challenge_page(service: ChallengeService, level: int = 0, offences: int = 0) -> str:
    body = service.challenge_page(
        target=b"/checkout?step=2",
        prefix=PREFIX,
        user_agent=UA,
        level=level,
        offences=offences,
        refid="SW-00000000CAFE",
        now=NOW,
    )
    return body.decode()


def field(html: str, pattern: str) -> str:
    found = re.search(pattern, html)
    assert found is not None, pattern
    return unescape(found.group(1))


def test_proof_of_work_then_cookie() -> None:
    service = ChallengeService(KEYRING)
    html = challenge_page(service, level=1, offences=1)
    token, difficulty = field(html, r'data-c="([^"]*)"'), int(field(html, r'data-d="([^"]*)"'))
    assert difficulty == 18  # 16 + 1 for the level + 1 for the offence
    query = f"c={token}&n={solve(token, difficulty)}".encode()
    passed = service.verify(query, PREFIX, UA, NOW + 3)
    assert passed == Passed(b"/checkout?step=2", 1, Method.POW, 18, int(NOW))
    assert service.verify(query, PREFIX, UA, NOW + 4) == Refused(Rejection.REPLAYED, b"/checkout?step=2")
    assert isinstance(passed, Passed)
    set_cookie = service.set_cookie(passed, PREFIX, UA, NOW + 3)
    assert set_cookie.startswith(b"sw_clearance=") and b"; HttpOnly; SameSite=Lax" in set_cookie
    cookie_header = b"lang=en; " + set_cookie.partition(b";")[0]
    assert service.cleared_level([cookie_header], PREFIX, UA, NOW + 60) == 1
    assert service.cleared_level([cookie_header], "198.51.101.0/24", UA, NOW + 60) is None
    assert service.cleared_level([b"lang=en"], PREFIX, UA, NOW + 60) is None
    assert service.cleared_level([], PREFIX, UA, NOW + 60) is None


def test_the_no_javascript_way() -> None:
    service = ChallengeService(KEYRING, ChallengeSettings(wait_seconds=3))
    html = challenge_page(service)
    wait_token = field(html, r'name="w" value="([^"]*)"')
    assert field(html, r'content="(\d+);url=') == "3"
    query = f"w={wait_token}".encode()
    assert service.verify(query, PREFIX, UA, NOW + 1) == Refused(Rejection.TOO_EARLY, b"/checkout?step=2", 2)
    assert service.verify(query, PREFIX, UA, NOW + 3) == Passed(
        b"/checkout?step=2", 0, Method.WAIT, 0, int(NOW)
    )


@pytest.mark.parametrize("query", [b"", b"c=abc", b"n=1", b"x=1"])
def test_a_query_without_an_answer_is_malformed(query: bytes) -> None:
    assert ChallengeService(KEYRING).verify(query, PREFIX, UA, NOW) == Refused(Rejection.MALFORMED)


def test_settings_that_do_not_fit_the_keyring_are_refused() -> None:
    short = Keyring(MasterSecrets(1, bytes(32)), rotation=600.0)
    with pytest.raises(ValueError, match="max_age"):
        ChallengeService(short, ChallengeSettings(challenge_ttl=600, wait_ttl=600, cookie_max_age=3600))
    with pytest.raises(ValueError, match="lifetime"):
        ChallengeService(short, ChallengeSettings(challenge_ttl=601))


def test_secure_cookies_and_another_name() -> None:
    service = ChallengeService(KEYRING, ChallengeSettings(cookie_name="gate", secure_cookie=True))
    passed = Passed(b"/", 2, Method.POW, 16, int(NOW))
    set_cookie = service.set_cookie(passed, PREFIX, UA, NOW)
    assert set_cookie.startswith(b"gate=") and set_cookie.endswith(b"; Secure")
    assert service.cleared_level([set_cookie.partition(b";")[0]], PREFIX, UA, NOW) == 2
