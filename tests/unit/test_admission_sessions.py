"""The table of session values the origin set, and the cookie parsing it relies on."""

from __future__ import annotations

from shieldwall.admission.sessions import SessionTable
from shieldwall.http1.cookies import cookie_pairs, set_cookie_pair


def test_cookie_pairs_split_on_semicolons_and_keep_values_as_sent() -> None:
    pairs = [(b"a", b"1"), (b"b", b"x=y"), (b"c", b""), (b"", b"d")]
    assert list(cookie_pairs(b"a=1; b=x=y;c=;  d")) == pairs


def test_set_cookie_pair_separates_the_attributes() -> None:
    assert set_cookie_pair(b"sid=abc; Path=/; Max-Age=0") == (b"sid", b"abc", b" path=/; max-age=0")


def test_only_values_the_origin_set_count() -> None:
    table = SessionTable(["sid"])
    table.learn(b"sid=v1; HttpOnly")
    table.learn(b"other=v2")
    assert table.logged_in([b"theme=dark; sid=v1"])
    assert not table.logged_in([b"sid=v2"]), "a made-up value is not a session"
    assert not table.logged_in([b"other=v2"]), "only the named cookies are sessions"
    assert len(table) == 1


def test_a_deleted_session_is_forgotten() -> None:
    table = SessionTable(["sid"])
    table.learn(b"sid=v1")
    table.learn(b"sid=v1; Max-Age=0")
    assert not table.logged_in([b"sid=v1"])


def test_the_table_is_bounded_and_forgets_the_oldest() -> None:
    table = SessionTable(["sid"], capacity=3)
    for index in range(5):
        table.learn(b"sid=v%d" % index)
    assert len(table) == 3
    assert not table.logged_in([b"sid=v0"]) and table.logged_in([b"sid=v4"])
