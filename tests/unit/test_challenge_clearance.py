"""The clearance cookie: worth its level to the client it was issued to, until it expires, and worthless
when forged, tampered with, expired or presented by another prefix or browser."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shieldwall.challenge.clearance import Clearance
from shieldwall.challenge.keys import Keyring, MasterSecrets
from shieldwall.challenge.nojs import NoScriptWait
from shieldwall.challenge.replay import ReplaySet
from shieldwall.challenge.tokens import Sealer

NOW = 1_700_000_000.0
PREFIX = "203.0.113.0/24"
UA = b"Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Safari/604.1"


def sealer(master: bytes = bytes(range(32)), rotation: float = 86_400.0) -> Sealer:
    return Sealer(Keyring(MasterSecrets(1, master), rotation))


CLEARANCE = Clearance(sealer(), max_age=3600)
COOKIE = CLEARANCE.issue(PREFIX, UA, level=2, now=NOW)


def test_a_cookie_clears_its_client_for_its_level_until_it_expires() -> None:
    assert CLEARANCE.verify(COOKIE, PREFIX, UA, NOW) == 2
    assert CLEARANCE.verify(COOKIE, PREFIX, UA, NOW + 3599) == 2
    assert CLEARANCE.verify(COOKIE, PREFIX, UA, NOW + 3600) is None


def test_worthless_elsewhere_or_forged() -> None:
    assert CLEARANCE.verify(COOKIE, "203.0.114.0/24", UA, NOW) is None
    assert CLEARANCE.verify(COOKIE, PREFIX, UA.replace(b"17_5", b"17_6"), NOW) is None
    assert CLEARANCE.verify(COOKIE, PREFIX, None, NOW) is None
    forged = Clearance(sealer(master=bytes(32))).issue(PREFIX, UA, level=2, now=NOW)
    assert CLEARANCE.verify(forged, PREFIX, UA, NOW) is None
    assert CLEARANCE.verify(b"", PREFIX, UA, NOW) is None


def test_a_wait_token_is_not_a_cookie() -> None:
    token = NoScriptWait(CLEARANCE.sealer, ReplaySet()).issue(b"/", PREFIX, UA, level=2, now=NOW)
    assert CLEARANCE.verify(token, PREFIX, UA, NOW + 10) is None


@given(st.data())
def test_changing_any_byte_makes_a_cookie_worthless(data: st.DataObject) -> None:
    cookie = bytearray(COOKIE)
    index = data.draw(st.integers(0, len(cookie) - 1))
    cookie[index] = data.draw(st.integers(0, 255).filter(lambda byte: byte != cookie[index]))
    assert CLEARANCE.verify(bytes(cookie), PREFIX, UA, NOW) is None


def test_a_cookie_outlives_a_change_of_key_period() -> None:
    clearance = Clearance(sealer(rotation=3600.0), max_age=3600)
    issued = 3600.0 * (NOW // 3600) + 3599  # the last second of a key period
    cookie = clearance.issue(PREFIX, UA, level=0, now=issued)
    assert clearance.verify(cookie, PREFIX, UA, issued + 3599) == 0


def test_the_value_is_compact_and_cookie_safe() -> None:
    assert re.fullmatch(rb"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", COOKIE)
    assert len(COOKIE) < 120
    v6 = CLEARANCE.issue("2001:db8:1:2::/64", UA, level=0, now=NOW)
    assert re.fullmatch(rb"[A-Za-z0-9_.-]+", v6) and len(v6) < 120


def test_set_cookie_header_value() -> None:
    assert CLEARANCE.set_cookie(COOKIE) == (
        b"sw_clearance=" + COOKIE + b"; Max-Age=3600; Path=/; HttpOnly; SameSite=Lax"
    )
    secure = Clearance(sealer(), name="__Host-clear", max_age=600, secure=True)
    assert secure.set_cookie(b"v") == b"__Host-clear=v; Max-Age=600; Path=/; HttpOnly; SameSite=Lax; Secure"


@pytest.mark.parametrize("name", ["", "a b", "a;b", "a=b", "caf\u00e9", 'a"'])
def test_cookie_names_must_be_tokens(name: str) -> None:
    with pytest.raises(ValueError, match="cookie name"):
        Clearance(sealer(), name=name)


def test_a_cookie_cannot_outlive_its_key() -> None:
    with pytest.raises(ValueError, match="max_age"):
        Clearance(sealer(rotation=600.0), max_age=601)
    with pytest.raises(ValueError, match="max_age"):
        Clearance(sealer(), max_age=0)


@pytest.mark.parametrize(
    ("headers", "found"),
    [
        ([b"sw_clearance=abc.def"], b"abc.def"),
        ([b"a=1; sw_clearance=abc.def; b=2"], b"abc.def"),
        ([b"a=1;sw_clearance=abc.def"], b"abc.def"),
        ([b"xsw_clearance=no; sw_clearance=yes"], b"yes"),
        ([b"sw_clearance_old=no"], None),
        ([b"a=sw_clearance=no"], None),
        ([b"a=1", b"b=2; sw_clearance=second-line "], b"second-line"),
        ([b"sw_clearance=first; sw_clearance=second"], b"first"),
        ([b"sw_clearance="], b""),
        ([b""], None),
        ([], None),
    ],
)
def test_finding_the_cookie_in_cookie_headers(headers: list[bytes], found: bytes | None) -> None:
    assert CLEARANCE.find(headers) == found


def test_the_found_value_verifies() -> None:
    header = b"theme=dark; " + CLEARANCE.set_cookie(COOKIE).partition(b";")[0] + b"; lang=en"
    found = CLEARANCE.find([header])
    assert found == COOKIE and CLEARANCE.verify(found, PREFIX, UA, NOW) == 2
