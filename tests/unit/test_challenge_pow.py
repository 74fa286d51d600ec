"""The proof of work: a solved challenge passes once, and every kind of bad answer fails with its own
reason; the Python solver finds the nonce the page's search finds."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shieldwall.challenge.keys import Keyring, MasterSecrets
from shieldwall.challenge.outcomes import Method, Passed, Refused, Rejection
from shieldwall.challenge.pow import DEFAULT_TTL, ProofOfWork, meets_difficulty
from shieldwall.challenge.replay import ReplaySet
from shieldwall.challenge.solver import solve
from shieldwall.challenge.tokens import Sealer

NOW = 1_700_000_000.0
PREFIX = "203.0.113.0/24"
UA = b"Mozilla/5.0 (Android 14; Mobile) Firefox/128.0"
TARGET = b"/donate?amount=5"


def pow_with(master: bytes = bytes(range(32)), rotation: float = 86_400.0) -> ProofOfWork:
    return ProofOfWork(Sealer(Keyring(MasterSecrets(1, master), rotation)), ReplaySet())


def challenge(work: ProofOfWork, difficulty: int = 8, now: float = NOW) -> bytes:
    return work.issue(TARGET, PREFIX, UA, difficulty=difficulty, level=1, now=now)


def answer(token: bytes, difficulty: int = 8) -> bytes:
    return b"%d" % solve(token, difficulty)


def leading_zero_bits(digest: bytes) -> int:
    bits = "".join(f"{byte:08b}" for byte in digest)
    return len(bits) - len(bits.lstrip("0"))


def test_a_solved_challenge_passes_once() -> None:
    work = pow_with()
    token = challenge(work)
    nonce = answer(token)
    assert leading_zero_bits(hashlib.sha256(token + nonce).digest()) >= 8
    passed = work.verify(token, nonce, PREFIX, UA, NOW + 2)
    assert passed == Passed(TARGET, 1, Method.POW, 8, int(NOW))
    assert work.verify(token, nonce, PREFIX, UA, NOW + 3) == Refused(Rejection.REPLAYED, TARGET)


def test_reasons() -> None:
    work = pow_with()
    token = challenge(work)
    nonce = answer(token)
    assert work.verify(token, nonce, "198.51.100.0/24", UA, NOW) == Refused(Rejection.WRONG_PREFIX, TARGET)
    assert work.verify(token, nonce, PREFIX, b"curl/8.5", NOW) == Refused(Rejection.WRONG_USER_AGENT, TARGET)
    expired = NOW + DEFAULT_TTL
    assert work.verify(token, nonce, PREFIX, UA, expired) == Refused(Rejection.EXPIRED, TARGET)
    forged = challenge(pow_with(master=bytes(32)))
    assert work.verify(forged, answer(forged), PREFIX, UA, NOW) == Refused(Rejection.BAD_SIGNATURE)
    tampered = token[:10] + (b"A" if token[10:11] != b"A" else b"B") + token[11:]
    refused = work.verify(tampered, nonce, PREFIX, UA, NOW)
    assert isinstance(refused, Refused) and refused.target == b"/"
    assert refused.reason in (Rejection.BAD_SIGNATURE, Rejection.MALFORMED, Rejection.UNKNOWN_KEY)
    # None of these used the token up.
    assert isinstance(work.verify(token, nonce, PREFIX, UA, NOW), Passed)


def test_too_few_zero_bits() -> None:
    work = pow_with()
    token = challenge(work, difficulty=12)
    short = next(
        n for n in range(10_000) if not meets_difficulty(hashlib.sha256(token + b"%d" % n).digest(), 12)
    )
    assert work.verify(token, b"%d" % short, PREFIX, UA, NOW) == Refused(Rejection.INSUFFICIENT_WORK, TARGET)
    assert isinstance(work.verify(token, answer(token, 12), PREFIX, UA, NOW), Passed)  # still unused


@pytest.mark.parametrize(
    "nonce", [b"", b"-1", b"+1", b"01", b"00", b"1.0", b"1e3", b" 1", b"\xd9\xa1", b"9" * 16]
)
def test_nonces_other_than_canonical_decimals_are_malformed(nonce: bytes) -> None:
    work = pow_with()
    token = challenge(work, difficulty=0)  # any nonce has enough zero bits: only the syntax can fail
    assert work.verify(token, nonce, PREFIX, UA, NOW) == Refused(Rejection.MALFORMED, TARGET)
    assert isinstance(work.verify(token, b"0", PREFIX, UA, NOW), Passed)


def test_a_challenge_from_the_previous_key_period_passes_and_older_ones_do_not() -> None:
    work = pow_with(rotation=600.0)
    issued = 600.0 * (NOW // 600) + 599  # the last second of a period
    token = challenge(pow_with(rotation=600.0), now=issued)
    assert isinstance(work.verify(token, answer(token), PREFIX, UA, issued + 2), Passed)  # next period
    old = challenge(work, now=issued - 600)
    assert work.verify(old, answer(old), PREFIX, UA, issued + 2) == Refused(Rejection.UNKNOWN_KEY)


def test_the_target_is_made_safe_and_the_token_carries_it() -> None:
    work = pow_with()
    token = work.issue(b"//evil.example/", PREFIX, UA, difficulty=0, level=0, now=NOW)
    assert work.verify(token, b"0", PREFIX, UA, NOW).target == b"/evil.example/"


def test_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="difficulty"):
        challenge(pow_with(), difficulty=33)
    with pytest.raises(ValueError, match="lifetime"):
        ProofOfWork(Sealer(Keyring(MasterSecrets(1, bytes(32)), 60.0)), ReplaySet(), ttl=61)


@given(st.binary(min_size=32, max_size=32), st.integers(0, 32))
def test_meets_difficulty_counts_leading_zero_bits(digest: bytes, difficulty: int) -> None:
    assert meets_difficulty(digest, difficulty) == (leading_zero_bits(digest) >= difficulty)


@settings(max_examples=20, deadline=None)
@given(st.text("abcdefgh.-_0123456789", max_size=40), st.integers(0, 10))
def test_the_solver_finds_the_first_nonce_that_works(challenge_text: str, difficulty: int) -> None:
    nonce = solve(challenge_text, difficulty)
    digests = [hashlib.sha256(f"{challenge_text}{n}".encode()).digest() for n in range(nonce + 1)]
    assert [meets_difficulty(digest, difficulty) for digest in digests] == [False] * nonce + [True]
    assert solve(challenge_text.encode(), difficulty) == nonce


SOLVED = challenge(pow_with(), difficulty=4)
SOLVED_NONCE = answer(SOLVED, 4)


@given(st.data())
def test_changing_any_byte_of_a_solved_challenge_makes_it_fail(data: st.DataObject) -> None:
    token = bytearray(SOLVED)
    index = data.draw(st.integers(0, len(token) - 1))
    token[index] = data.draw(st.integers(0, 255).filter(lambda byte: byte != token[index]))
    assert isinstance(pow_with().verify(bytes(token), SOLVED_NONCE, PREFIX, UA, NOW), Refused)
    assert isinstance(pow_with().verify(SOLVED, SOLVED_NONCE, PREFIX, UA, NOW), Passed)
