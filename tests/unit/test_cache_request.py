"""Which requests may use the cache, and the keys they are looked up under."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from shieldwall.cache import Bypass, CacheConfig
from shieldwall.cache.request import CacheRequest, KeyRules, classify_request, secondary_key
from shieldwall.http1.request import RequestHead, validate_request_head

RULES = KeyRules.from_config(CacheConfig())


def head(
    method: bytes = b"GET",
    target: bytes = b"/page?a=1",
    host: bytes = b"example.org",
    headers: Sequence[tuple[bytes, bytes]] = (),
    body: bool = False,
) -> RequestHead:
    fields = [(b"Host", host), *headers]
    if body:
        fields.append((b"Content-Length", b"3"))
    return validate_request_head(method, target, b"1.1", fields)


def classify(*headers: tuple[bytes, bytes], rules: KeyRules = RULES, **kw: Any) -> CacheRequest | Bypass:
    return classify_request(head(headers=headers, **kw), b"https", rules)


def primary(*headers: tuple[bytes, bytes], rules: KeyRules = RULES, **kw: Any) -> bytes:
    result = classify(*headers, rules=rules, **kw)
    assert isinstance(result, CacheRequest), result
    return result.primary


def test_key_is_scheme_host_and_target() -> None:
    assert primary() == b"https://example.org/page?a=1"
    assert primary(host=b"EXAMPLE.org:8443") == b"https://example.org:8443/page?a=1"
    http = classify_request(head(), b"http", RULES)
    assert isinstance(http, CacheRequest) and http.primary == b"http://example.org/page?a=1"


@pytest.mark.parametrize("method", [b"POST", b"PUT", b"DELETE", b"OPTIONS", b"PATCH"])
def test_only_get_and_head(method: bytes) -> None:
    assert classify(method=method) is Bypass.METHOD


def test_head_is_marked_head_only() -> None:
    result = classify(method=b"HEAD")
    assert isinstance(result, CacheRequest) and result.head_only
    assert result.primary == primary()  # the same key as the GET it is answered from


def test_a_get_with_a_body_or_an_upgrade_bypasses() -> None:
    assert classify(body=True) is Bypass.BODY
    upgrade = head(headers=[(b"Connection", b"Upgrade"), (b"Upgrade", b"websocket")])
    assert classify_request(upgrade, b"http", RULES) is Bypass.BODY


def test_authorization_bypasses() -> None:
    assert classify((b"Authorization", b"Bearer x")) is Bypass.AUTHORIZATION
    assert classify((b"authorization", b"")) is Bypass.AUTHORIZATION


def test_session_cookies_bypass_other_cookies_are_ignored() -> None:
    assert classify((b"Cookie", b"_ga=GA1.2.3; PHPSESSID=abc")) is Bypass.SESSION_COOKIE
    assert classify((b"Cookie", b"phpsessid=abc")) is Bypass.SESSION_COOKIE  # case-insensitive
    assert classify((b"Cookie", b"wordpress_logged_in_0a1b=u")) is Bypass.SESSION_COOKIE  # prefix
    assert primary((b"Cookie", b"_ga=GA1.2.3; consent=yes")) == primary()


def test_session_cookie_names_are_the_operators() -> None:
    rules = KeyRules.from_config(CacheConfig(session_cookies=(b"sid", b"auth_*")))
    assert classify((b"Cookie", b"sid=1"), rules=rules) is Bypass.SESSION_COOKIE
    assert classify((b"Cookie", b"a=1"), (b"Cookie", b"AUTH_token=1"), rules=rules) is Bypass.SESSION_COOKIE
    assert primary((b"Cookie", b"PHPSESSID=1"), rules=rules) == primary(rules=rules)


def test_named_key_cookies_split_the_key_in_a_stable_order() -> None:
    rules = KeyRules.from_config(CacheConfig(key_cookies=(b"lang", b"Currency")))
    french = primary((b"Cookie", b"_ga=1; lang=fr; currency=eur"), rules=rules)
    assert french == primary((b"Cookie", b"currency=eur; lang=fr"), rules=rules)
    assert french != primary((b"Cookie", b"lang=de; currency=eur"), rules=rules)
    assert primary((b"Cookie", b"_ga=1"), rules=rules) == primary(rules=rules)


def test_query_order_matters_unless_sorting_is_configured() -> None:
    assert primary(target=b"/p?b=2&a=1") != primary(target=b"/p?a=1&b=2")
    rules = KeyRules.from_config(CacheConfig(sort_query=True))
    assert primary(target=b"/p?b=2&a=1", rules=rules) == primary(target=b"/p?a=1&b=2", rules=rules)
    assert primary(target=b"/p?a=1", rules=rules) != primary(target=b"/q?a=1", rules=rules)


def test_path_prefixes_limit_the_routes() -> None:
    rules = KeyRules.from_config(CacheConfig(path_prefixes=(b"/static/", b"/blog")))
    assert classify(target=b"/static/app.js", rules=rules) != Bypass.ROUTE
    assert classify(target=b"/blog/post", rules=rules) != Bypass.ROUTE
    assert classify(target=b"/api/x", rules=rules) is Bypass.ROUTE


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ((b"If-None-Match", b'"x"'), Bypass.CONDITIONAL),
        ((b"If-Modified-Since", b"Sun, 06 Nov 1994 08:49:37 GMT"), Bypass.CONDITIONAL),
        ((b"Range", b"bytes=0-10"), Bypass.RANGE),
        ((b"Cache-Control", b"no-store"), Bypass.NO_STORE),
    ],
)
def test_requests_that_may_be_served_but_must_not_lead_a_fetch(
    header: tuple[bytes, bytes], reason: Bypass
) -> None:
    result = classify(header)
    assert isinstance(result, CacheRequest) and result.solo is reason and not result.revalidate


@pytest.mark.parametrize(
    ("headers", "revalidate"),
    [
        (((b"Cache-Control", b"no-cache"),), True),
        (((b"Cache-Control", b"max-age=0"),), True),
        (((b"Cache-Control", b"max-age=5"),), False),
        (((b"Pragma", b"no-cache"),), True),
        (((b"Pragma", b"no-cache"), (b"Cache-Control", b"max-age=5")), False),  # Pragma only without CC
        (((b"Cache-Control", b"no-cache; junk"),), False),  # malformed: ignored, not obeyed
    ],
)
def test_client_revalidation_requests_are_reported(
    headers: tuple[tuple[bytes, bytes], ...], revalidate: bool
) -> None:
    result = classify(*headers)
    assert isinstance(result, CacheRequest) and result.revalidate is revalidate


def test_secondary_key_is_the_values_of_the_varied_fields() -> None:
    fields = [(b"Accept-Encoding", b" gzip "), (b"X-A", b"1"), (b"x-a", b"2")]
    assert secondary_key((), fields) == ()
    assert secondary_key((b"accept-encoding", b"accept-language", b"x-a"), fields) == (b"gzip", None, b"1, 2")
