"""RequestHead's header lookups: names compared case-insensitively, first value or every value."""

from __future__ import annotations

from shieldwall.http1.request import validate_request_head


def head(*fields: tuple[bytes, bytes]):
    return validate_request_head(b"GET", b"/", b"1.1", [(b"Host", b"h"), *fields])


def test_header_gives_the_first_value_whatever_the_case_of_the_name() -> None:
    request = head((b"User-Agent", b"a"), (b"user-agent", b"b"))
    assert request.header(b"user-agent") == b"a"
    assert request.header(b"referer") is None
    assert request.header(b"user-agen") is None, "a prefix of a name is not the name"


def test_values_gives_every_value_in_order() -> None:
    request = head((b"Cookie", b"a=1"), (b"Accept", b"*/*"), (b"COOKIE", b"b=2"))
    assert request.values(b"cookie") == [b"a=1", b"b=2"]
    assert request.values(b"x-none") == []
