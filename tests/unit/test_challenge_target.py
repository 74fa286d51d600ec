"""A challenge never becomes an open redirect: whatever the request target, the place a visitor is sent
back to is a path on this site."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shieldwall.challenge.target import MAX_TARGET, safe_target


@pytest.mark.parametrize(
    ("target", "safe"),
    [
        (b"/", b"/"),
        (b"/shop/cart?item=3&q=a%20b", b"/shop/cart?item=3&q=a%20b"),
        (b"//evil.example/x", b"/evil.example/x"),
        (b"///evil.example", b"/evil.example"),
        (b"/\\evil.example", b"/%5Cevil.example"),
        (b"/\t/evil.example", b"/%09/evil.example"),
        (b"/\r\n/evil.example", b"/%0D%0A/evil.example"),
        (b"/ /x", b"/%20/x"),
        ("/caf\u00e9".encode(), b"/caf%C3%A9"),
        (b"*", b"/"),
        (b"", b"/"),
        (b"http://evil.example/", b"/"),
        (b"evil.example", b"/"),
        (b"/.shieldwall/verify?c=x&n=1", b"/"),
        (b"/" + b"a" * (MAX_TARGET - 1), b"/" + b"a" * (MAX_TARGET - 1)),
        (b"/page?" + b"q" * MAX_TARGET, b"/page"),
        (b"/" + b"a" * MAX_TARGET, b"/"),
    ],
)
def test_examples(target: bytes, safe: bytes) -> None:
    assert safe_target(target) == safe


@given(st.binary(max_size=2 * MAX_TARGET))
def test_any_target_stays_on_the_site(target: bytes) -> None:
    safe = safe_target(target)
    assert safe.startswith(b"/") and not safe.startswith(b"//") and len(safe) <= MAX_TARGET
    assert all(0x21 <= byte < 0x7F and byte != 0x5C for byte in safe)
    resolved = urlsplit(urljoin("https://site.example/a/b", safe.decode("ascii")))
    assert (resolved.scheme, resolved.netloc) == ("https", "site.example")


@given(st.binary(max_size=100).map(lambda rest: b"/" + rest))
def test_safe_targets_are_kept_as_they_are(target: bytes) -> None:
    once = safe_target(target)
    assert safe_target(once) == once
