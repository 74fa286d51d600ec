"""The no-JavaScript wait: its token only works after the wait, once, for the client it was issued to."""

from __future__ import annotations

import pytest

from shieldwall.challenge.keys import Keyring, MasterSecrets
from shieldwall.challenge.nojs import DEFAULT_WAIT, NoScriptWait
from shieldwall.challenge.outcomes import Method, Passed, Refused, Rejection
from shieldwall.challenge.pow import ProofOfWork
from shieldwall.challenge.replay import ReplaySet
from shieldwall.challenge.tokens import Sealer

NOW = 1_700_000_000.25
PREFIX = "2001:db8:1:2::/64"
UA = b"Lynx/2.9.0"
TARGET = b"/article/42"


def waiting(master: bytes = bytes(range(32)), **settings: int) -> NoScriptWait:
    return NoScriptWait(Sealer(Keyring(MasterSecrets(1, master))), ReplaySet(), **settings)


def test_the_token_works_after_the_wait_and_only_once() -> None:
    wait = waiting()
    assert wait.wait == DEFAULT_WAIT == 5
    token = wait.issue(TARGET, PREFIX, UA, level=2, now=NOW)
    assert wait.verify(token, PREFIX, UA, NOW + 0.5) == Refused(Rejection.TOO_EARLY, TARGET, retry_in=5)
    assert wait.verify(token, PREFIX, UA, NOW + 3.9) == Refused(Rejection.TOO_EARLY, TARGET, retry_in=1)
    # Whole seconds, rounded down: ready at floor(NOW + 5), never later than the browser's refresh.
    assert wait.verify(token, PREFIX, UA, NOW + 4.75) == Passed(TARGET, 2, Method.WAIT, 0, int(NOW))
    assert wait.verify(token, PREFIX, UA, NOW + 6) == Refused(Rejection.REPLAYED, TARGET)


def test_reasons() -> None:
    wait = waiting(wait=2, ttl=30)
    token = wait.issue(TARGET, PREFIX, UA, level=0, now=NOW)
    later = NOW + 10
    assert wait.verify(token, "2001:db8:1:3::/64", UA, later) == Refused(Rejection.WRONG_PREFIX, TARGET)
    assert wait.verify(token, PREFIX, b"Lynx/2.9.1", later) == Refused(Rejection.WRONG_USER_AGENT, TARGET)
    assert wait.verify(token, PREFIX, UA, NOW + 30) == Refused(Rejection.EXPIRED, TARGET)
    forged = waiting(master=bytes(32)).issue(TARGET, PREFIX, UA, level=0, now=NOW)
    assert wait.verify(forged, PREFIX, UA, later) == Refused(Rejection.BAD_SIGNATURE)
    assert wait.verify(token.replace(b".", b""), PREFIX, UA, later) == Refused(Rejection.MALFORMED)
    assert isinstance(wait.verify(token, PREFIX, UA, later), Passed)  # none of the above used it up


def test_a_proof_of_work_token_is_not_a_wait_token() -> None:
    wait = waiting()
    work = ProofOfWork(wait.sealer, wait.replay)
    token = work.issue(TARGET, PREFIX, UA, difficulty=0, level=0, now=NOW)
    assert wait.verify(token, PREFIX, UA, NOW + 10) == Refused(Rejection.MALFORMED)


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="wait"):
        waiting(wait=10, ttl=10)
    with pytest.raises(ValueError, match="wait"):
        waiting(wait=-1)
