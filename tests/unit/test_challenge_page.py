"""The challenge page: everything it needs inline, every interpolated value escaped, a way through
without JavaScript, and the verify URL's query read as the page sends it."""

from __future__ import annotations

import re
from html import unescape

from shieldwall.challenge.endpoint import VERIFY_PATH, VerifyQuery, parse_verify_query
from shieldwall.challenge.page import ChallengePage

PAGE = ChallengePage()


def render(**values: object) -> str:
    arguments: dict[str, object] = {
        "challenge": b"Y2hhbGxlbmdl.bWFj",
        "difficulty": 16,
        "wait_token": b"d2FpdA.c2ln",
        "wait_seconds": 5,
        "refid": "SW-0123456789AB",
    }
    arguments.update(values)
    body = PAGE.render(**arguments)  # type: ignore[arg-type]
    assert isinstance(body, bytes)
    return body.decode()


def test_the_page_carries_the_challenge_and_the_reference() -> None:
    html = render()
    assert 'data-c="Y2hhbGxlbmdl.bWFj" data-d="16"' in html
    assert "<code>SW-0123456789AB</code>" in html
    assert not re.search(r"@[A-Z_]+@", html)  # every marker filled


def test_without_javascript_a_refresh_and_a_form_lead_to_the_wait_token() -> None:
    html = render(wait_seconds=7)
    noscript = re.findall(r"<noscript>(.*?)</noscript>", html, re.S)
    assert len(noscript) == 2
    assert noscript[0] == f'<meta http-equiv="refresh" content="7;url={VERIFY_PATH}?w=d2FpdA.c2ln">'
    form = noscript[1]
    assert f'<form method="get" action="{VERIFY_PATH}">' in form
    assert '<input type="hidden" name="w" value="d2FpdA.c2ln">' in form
    assert ">Continue</button>" in form and "wait 7 seconds" in form


def test_plain_words_a_phone_can_read_and_no_external_resource() -> None:
    html = render()
    assert '<meta name="viewport" content="width=device-width,initial-scale=1">' in html
    assert "under heavy load" in html and "nothing you need to do" in html
    assert not re.search(r"https?:|//[a-z]|<link|<img|<iframe|\ssrc\s*=\s*[\"']|import", html, re.I)
    style = re.search(r"<style>(.*?)</style>", html, re.S)
    assert style is not None and "url(" not in style.group(1) and "@font-face" not in style.group(1)
    assert html.count("<style>") == 1 and html.count("<script") == 2


def test_everything_interpolated_is_escaped() -> None:
    hostile = '"><script>alert(1)</script>&'
    html = render(challenge=hostile.encode(), wait_token=hostile.encode(), refid=hostile)
    assert "alert(1)</script>" not in html
    assert html.count("&quot;&gt;&lt;script&gt;") == 4  # data-c, meta refresh, hidden field, reference
    data_c = re.search(r'data-c="([^"]*)"', html)
    assert data_c is not None and unescape(data_c.group(1)) == hostile


def test_the_verify_query() -> None:
    assert parse_verify_query(b"c=tok.mac&n=123") == VerifyQuery(b"tok.mac", b"123", None)
    assert parse_verify_query(b"w=wait.mac") == VerifyQuery(None, None, b"wait.mac")
    assert parse_verify_query(b"n=1&x=2&c=a&c=b&n=2") == VerifyQuery(b"a", b"1", None)  # first wins
    assert parse_verify_query(b"c&n=") == VerifyQuery(b"", b"", None)
    assert parse_verify_query(b"") == VerifyQuery()
    assert parse_verify_query(b"w=" + b"a" * 5000) == VerifyQuery()
