"""Signed tokens: URL- and cookie-safe, standard HMAC-SHA256, bound to one key period, and any change to
any byte makes them fail."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from hypothesis import given
from hypothesis import strategies as st

from shieldwall.challenge import keys
from shieldwall.challenge.keys import Keyring, MasterSecrets
from shieldwall.challenge.outcomes import Rejection
from shieldwall.challenge.tokens import MAX_TOKEN, KeyedHmac, Opened, Sealer, b64, unb64, user_agent_hash

NOW = 1_700_000_000.0
MASTER = bytes(range(32))
UA = b"Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"
PREFIX = "203.0.113.0/24"
SEALER = Sealer(Keyring(MasterSecrets(1, MASTER), rotation=600.0))


def seal(fields: tuple[str, ...] = ("a", "b|c"), kind: str = "t", now: float = NOW) -> bytes:
    return SEALER.seal(kind, fields, prefix=PREFIX, user_agent=UA, expires=int(now) + 60, now=now)


def test_round_trip() -> None:
    opened = SEALER.open(seal(), "t", 2, NOW)
    assert opened == Opened(int(NOW) + 60, PREFIX, user_agent_hash(UA), ("a", "b|c"))
    assert opened.refusal(PREFIX, UA, NOW) is None


def test_tokens_need_no_escaping_in_urls_forms_or_cookies() -> None:
    token = seal(("x" * 50, "/path?q=1&r=<2>|;, ="))
    assert re.fullmatch(rb"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}", token)


def test_the_mac_is_hmac_sha256_over_the_encoded_payload_with_the_period_key() -> None:
    token = seal()
    payload, _, mac = token.partition(b".")
    key = keys.period_key(MASTER, int(NOW // 600))
    expected = hmac.new(key, payload, hashlib.sha256).digest()[:16]
    assert base64.urlsafe_b64decode(mac + b"==") == expected
    text = base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)).decode()
    assert text.split("|")[:4] == ["t", "1", str(int(NOW // 600)), str(int(NOW) + 60)]


@given(st.data())
def test_changing_any_byte_makes_a_token_fail(data: st.DataObject) -> None:
    token = bytearray(seal())
    index = data.draw(st.integers(0, len(token) - 1))
    token[index] = data.draw(st.integers(0, 255).filter(lambda byte: byte != token[index]))
    assert isinstance(SEALER.open(bytes(token), "t", 2, NOW), Rejection)


@given(st.binary(max_size=8))
def test_adding_or_removing_bytes_makes_a_token_fail(extra: bytes) -> None:
    token = seal()
    assert isinstance(SEALER.open(token + b"A" + extra, "t", 2, NOW), Rejection)
    assert isinstance(SEALER.open(token[: -1 - len(extra)], "t", 2, NOW), Rejection)
    assert isinstance(SEALER.open(extra + b"A" + token, "t", 2, NOW), Rejection)


@given(st.binary(max_size=300))
def test_garbage_is_refused_without_an_exception(garbage: bytes) -> None:
    assert isinstance(SEALER.open(garbage, "t", 2, NOW), Rejection)


def test_reasons_for_shape_kind_key_and_signature() -> None:
    token = seal()
    payload, _, mac = token.partition(b".")
    assert SEALER.open(token, "u", 2, NOW) is Rejection.MALFORMED  # another kind
    assert SEALER.open(seal(("a", "b")), "t", 3, NOW) is Rejection.MALFORMED  # another shape
    assert SEALER.open(payload + mac, "t", 2, NOW) is Rejection.MALFORMED
    assert SEALER.open(token + b"A" * MAX_TOKEN, "t", 2, NOW) is Rejection.MALFORMED
    other = Sealer(Keyring(MasterSecrets(1, bytes(32)), rotation=600.0))
    forged = other.seal("t", ("a", "b"), prefix=PREFIX, user_agent=UA, expires=1, now=NOW)
    assert SEALER.open(forged, "t", 2, NOW) is Rejection.BAD_SIGNATURE
    assert isinstance(SEALER.open(seal(now=NOW - 600), "t", 2, NOW), Opened)  # the previous period
    assert SEALER.open(seal(now=NOW - 1200), "t", 2, NOW) is Rejection.UNKNOWN_KEY  # two periods ago
    assert SEALER.open(seal(now=NOW + 600), "t", 2, NOW) is Rejection.UNKNOWN_KEY  # a future period


def test_binding_reasons() -> None:
    opened = SEALER.open(seal(), "t", 2, NOW)
    assert isinstance(opened, Opened)
    assert opened.refusal(PREFIX, UA, NOW + 59) is None
    assert opened.refusal(PREFIX, UA, NOW + 60) is Rejection.EXPIRED
    assert opened.refusal("198.51.100.0/24", UA, NOW) is Rejection.WRONG_PREFIX
    assert opened.refusal(PREFIX, UA + b" ", NOW) is Rejection.WRONG_USER_AGENT
    assert opened.refusal(PREFIX, None, NOW) is Rejection.WRONG_USER_AGENT


def test_only_the_last_field_may_contain_the_separator() -> None:
    for fields, prefix in ((("a|b", "c"), PREFIX), (("a", "b"), "203.0.113.0|24")):
        try:
            SEALER.seal("t", fields, prefix=prefix, user_agent=UA, expires=1, now=NOW)
        except ValueError as exc:
            assert "|" in str(exc)
        else:
            raise AssertionError(f"{fields} {prefix} was sealed")


def test_user_agent_hash() -> None:
    assert user_agent_hash(None) == user_agent_hash(b"")
    assert user_agent_hash(UA) != user_agent_hash(UA.upper())
    assert re.fullmatch(r"[A-Za-z0-9_-]{12}", user_agent_hash(UA))


@given(st.binary(max_size=64), st.binary(max_size=500))
def test_keyed_hmac_is_hmac_sha256(key: bytes, message: bytes) -> None:
    assert KeyedHmac(key).digest(message) == hmac.new(key, message, hashlib.sha256).digest()


@given(st.binary(max_size=100))
def test_base64url_without_padding(data: bytes) -> None:
    assert b64(data) == base64.urlsafe_b64encode(data).rstrip(b"=")
    assert unb64(b64(data)) == data
