"""A real browser through the real proxy: Debian's Chromium, driven by Playwright, is challenged, solves
the proof of work with the page's own script (Web Worker + WebCrypto) and lands on the origin's page
with the clearance cookie set; with JavaScript disabled it gets through by the no-JavaScript wait.
`make test` installs chromium (Debian) and playwright (PyPI); a missing one fails these tests."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from helpers import procs

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
RULES = [{"name": "everyone", "action": "challenge", "match": {"path_prefix": "/"}}]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert shutil.which("chromium") == CHROMIUM, "Debian's chromium is missing: run make test"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def shield(start_shield) -> procs.ServerProcess:
    return start_shield({"rules": RULES, "challenge": {"difficulty": 14, "wait_seconds": 3}})


def url(shield: procs.ServerProcess, target: str) -> str:
    host, port = shield.address
    return f"http://{host}:{port}{target}"


def test_a_browser_solves_the_challenge_and_lands_on_the_page(browser: Browser, shield) -> None:
    context = browser.new_context()
    page = context.new_page()
    first = page.goto(url(shield, "/hello?from=browser"))
    assert first is not None and first.status == 403, "the first answer is the challenge page"
    page.wait_for_function("document.body && document.body.innerText === 'hello'", timeout=20_000)
    assert page.url == url(shield, "/hello?from=browser"), "back on the page asked for, query and all"
    cookies = {cookie["name"]: cookie for cookie in context.cookies()}
    assert "sw_clearance" in cookies and cookies["sw_clearance"]["httpOnly"]
    again = page.goto(url(shield, "/hello"))
    assert again is not None and again.status == 200, "the cookie lets the next page through at once"
    context.close()


def test_a_browser_without_javascript_gets_through_by_waiting(browser: Browser, shield) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    started = time.monotonic()
    landed = page.expect_response(
        lambda r: r.url == url(shield, "/hello") and r.status == 200, timeout=20_000
    )
    with page.expect_response(lambda r: "/.shieldwall/verify?w=" in r.url, timeout=20_000) as verify, landed:
        first = page.goto(url(shield, "/hello"))
        assert first is not None and first.status == 403
        assert "<noscript>" in page.content()
    assert verify.value.status == 303, "the page's refresh took the wait token to the verify URL"
    assert time.monotonic() - started >= 3, "not before the wait is over"
    page.wait_for_load_state("load")
    assert page.inner_text("body").strip() == "hello"
    assert any(cookie["name"] == "sw_clearance" for cookie in context.cookies())
    context.close()
