"""The live dashboard in a real browser (Debian's Chromium, driven by Playwright) against a real
`shieldwall run` with its admin listener: the page opens with the token from `shieldwall admin url`'s
fragment and shows the mode; during a bounded flood through the proxy its charts and figures move, the
mode turns under_attack and a signature is mined, which the page pins and rejects; a hostile User-Agent
shows as text; an address banned from the page is refused by the shield within two seconds and let in
again after Unban from the page; the incident's HTML report opens from its link; a mode pinned from the
page shows there and in `shieldwall top --once`; without a good token the page says how to get one.
Screenshots taken during the flood are saved as docs/dashboard.png and docs/dashboard-phone.png when
SHIELDWALL_SCREENSHOTS=docs is set.

Every traffic loop is bounded in time and sent from 127.0.0.0/8 only."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from helpers import procs
from helpers.rawhttp import Connection
from shieldwall.drill.processes import accepts, free_port

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
# The screenshots in docs/ are refreshed on demand (SHIELDWALL_SCREENSHOTS=docs make test), so that an
# ordinary test run leaves the checkout as it was; otherwise they go to the temporary directory.
DOCS = (
    Path(__file__).resolve().parents[2] / "docs"
    if os.environ.get("SHIELDWALL_SCREENSHOTS") == "docs"
    else Path(tempfile.gettempdir()) / "shieldwall-screenshots"
)
DETECTOR = {"attack_rps": 40.0, "hold": 2.0, "warmup": 0}
FLOOD_SECONDS = 45.0  # the most any traffic thread runs, whatever happens to the test
BANNED = "127.0.0.77"
HOSTILE_AGENT = '<img src=x onerror="window.pwned=1">Mozilla/5.0'


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    assert shutil.which("chromium") == CHROMIUM, "Debian's chromium is missing: run make test"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.1)


def requests_from(
    address: tuple[str, int], source: str, user_agent: str, stop: threading.Event, pause: float
) -> None:
    """Keep-alive GETs from one loopback source until `stop` or FLOOD_SECONDS, `pause` s apart; a new
    connection when the shield closes one (a refusal, a ban), after a short rest."""
    deadline = time.monotonic() + FLOOD_SECONDS
    while not stop.is_set() and time.monotonic() < deadline:
        try:
            sock = socket.create_connection(address, timeout=5, source_address=(source, 0))
            with Connection.over(sock) as conn:
                while not stop.is_set() and time.monotonic() < deadline:
                    conn.request("GET", "/hello", headers=[("User-Agent", user_agent)])
                    if pause:
                        stop.wait(pause)
        except (OSError, ConnectionError, ValueError):
            stop.wait(0.2)


def refused_at_accept(source: str, shield: procs.ServerProcess) -> bool:
    """Whether the shield drops a connection from `source` at once, before it sends a byte: a banned
    client's fate. An allowed one stays open, waiting for a request (keepalive_timeout is 15 s)."""
    try:
        sock = socket.create_connection(shield.address, timeout=5, source_address=(source, 0))
    except OSError:
        return True
    with Connection.over(sock) as conn:
        return conn.peer_closed(within=1.0)


def wait_until(page: Page, expression: str, timeout: float) -> None:
    """Poll a JavaScript expression from outside the page: Playwright's wait_for_function evaluates
    strings inside it, which the dashboard's Content-Security-Policy (no eval) forbids, as it should."""
    wait_for(lambda: bool(page.evaluate(expression)), timeout, expression)


def said(page: Page, words: str) -> None:
    """Wait for the page's message line to start with `words` (what an action reports when done)."""
    wait_until(page, f"document.querySelector('#message').textContent.startsWith({json.dumps(words)})", 5)


def number(page: Page, selector: str) -> float:
    text = page.inner_text(selector).replace(",", "").strip()
    return float(text[:-1]) * 1000 if text.endswith("k") else float(text)


def points(page: Page) -> int:
    return int(page.get_attribute("#chart-rps", "data-points") or 0)


def admin_url(config: Path) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "shieldwall", "admin", "url", "--config", str(config)],
        check=False,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_dashboard_follows_a_flood_and_bans_from_the_page(
    browser: Browser, start_shield, tmp_path: Path
) -> None:
    admin_port = free_port()
    shield = start_shield(
        {
            "detector": DETECTOR,
            "server": {"state_dir": str(tmp_path / "state")},
            "admin": {"enabled": True, "listen": f"127.0.0.1:{admin_port}"},
        }
    )
    shield.wait_until(lambda: accepts("127.0.0.1", admin_port), 15, "the admin listener")
    url = admin_url(next(tmp_path.glob("shield-*.toml")))
    assert url.startswith(f"http://127.0.0.1:{admin_port}/#token=")

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    page.goto(url)
    assert "token" not in page.url, "the token leaves the address bar (it stays in sessionStorage)"
    wait_until(page, "document.querySelector('#mode').dataset.mode === 'normal'", 10)
    assert page.is_hidden("#need-token") and page.inner_text("#mode") == "NORMAL"

    stop = threading.Event()
    visitors = [
        threading.Thread(target=requests_from, args=(shield.address, f"127.0.5.{n}", agent, stop, 0.2))
        for n, agent in ((1, "Mozilla/5.0"), (2, "Mozilla/5.0"), (3, HOSTILE_AGENT))
    ]
    floods = [
        threading.Thread(target=requests_from, args=(shield.address, f"127.0.9.{n}", "flood/1.0", stop, 0))
        for n in (1, 2, 3)
    ]
    try:
        for thread in visitors:
            thread.start()
        wait_until(page, "Number(document.querySelector('#fig-legit').textContent) > 0", 10)
        time.sleep(8)  # calm seconds: on the charts, and the miner's sample of normal traffic
        hostile = page.locator("#top-user_agent td", has_text="<img src=x onerror=")
        assert hostile.count() == 1, "a User-Agent is shown as the text it is"
        assert page.locator("#main img, #main script").count() == 0, "and never becomes markup"
        assert page.evaluate("window.pwned") is None
        calm_points, calm_mitigated = points(page), number(page, "#fig-mitigated")
        for thread in floods:
            thread.start()
        wait_until(page, "document.querySelector('#mode').dataset.mode === 'under_attack'", 15)
        assert page.inner_text("#mode") == "UNDER ATTACK"
        wait_for(lambda: number(page, "#fig-mitigated") > calm_mitigated, 5, "mitigated requests shown")
        wait_for(lambda: "under_attack" in (page.get_attribute("#mode-band", "data-modes") or ""), 3, "band")
        assert points(page) > calm_points, "the chart grows a point a second"
        signature = page.locator("#signatures tr:not([data-key=''])").first
        signature.wait_for(timeout=20_000)  # mined every 5 s while under attack
        assert "flood/1.0" in signature.inner_text()
        time.sleep(6)  # some seconds of mitigated flood on the charts for the screenshot
        page.evaluate("window.scrollTo(0, 0)")
        DOCS.mkdir(exist_ok=True)
        page.screenshot(path=str(DOCS / "dashboard.png"), full_page=True)
        phone = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
        phone.goto(url)
        wait_until(phone, "Number(document.querySelector('#chart-rps').dataset.points) > 10", 10)
        phone.screenshot(path=str(DOCS / "dashboard-phone.png"))  # the first screen: mode, figures, charts
        phone.close()
        signature_id = (signature.get_attribute("data-key") or "").split()[0]
        signature.get_by_role("button", name="Pin").click()
        said(page, f"signature {signature_id} pinned")
        pinned = page.locator(f"#signatures tr[data-key='{signature_id} pinned']")
        pinned.wait_for(timeout=3_000)  # the next snapshot shows it pinned, with an Unpin button
        assert pinned.get_by_role("button", name="Unpin").is_visible()
        pinned.get_by_role("button", name="Reject").click()
        said(page, f"signature {signature_id} rejected")
        wait_for(
            lambda: page.locator(f"#signatures tr[data-key^='{signature_id} ']").count() == 0, 3, "rejected"
        )
    finally:
        stop.set()
        for thread in visitors + floods:
            if thread.ident is not None:
                thread.join(10)

    assert not refused_at_accept(BANNED, shield)
    page.fill("#ban-target", BANNED)
    page.select_option("#ban-duration", "10m")
    page.fill("#ban-reason", "test ban from the dashboard")
    page.click("#ban-form button[type=submit]")
    said(page, f"{BANNED} banned")
    banned_at = time.monotonic()
    wait_for(lambda: refused_at_accept(BANNED, shield), 2.5, "the ban to take effect")
    assert time.monotonic() - banned_at < 2.5
    row = page.locator("#bans tr", has_text=BANNED)
    assert "test ban from the dashboard" in row.inner_text()
    row.get_by_role("button", name="Unban").click()
    said(page, f"{BANNED} unbanned")
    wait_for(lambda: not refused_at_accept(BANNED, shield), 3, "the unban to take effect")
    wait_for(lambda: page.locator("#bans tr", has_text=BANNED).count() == 0, 6, "the ban gone from the list")

    report_link = page.locator("#incidents a[data-format=html]").first
    report_link.wait_for(timeout=10_000)
    incident = page.inner_text("#incidents tr >> nth=0 >> strong")
    with page.context.expect_page() as opened:
        report_link.click()
    report = opened.value  # opened blank at the click, then given the report fetched with the token
    report.wait_for_url(lambda address: address.startswith("blob:"), timeout=15_000)
    report.wait_for_load_state()
    assert incident.startswith("INC-") and incident in report.inner_text("body")

    admin = f"http://127.0.0.1:{admin_port}/"
    outside = [url for url in requested if not url.startswith((admin, "blob:", "data:"))]
    assert outside == [], "the page loads nothing from elsewhere"
    assert errors == []


def test_a_mode_pinned_from_the_page_shows_there_and_in_top(
    browser: Browser, start_shield, tmp_path: Path
) -> None:
    admin_port = free_port()
    shield = start_shield(
        {
            "server": {"state_dir": str(tmp_path / "state")},
            "admin": {"enabled": True, "listen": f"127.0.0.1:{admin_port}"},
        }
    )
    shield.wait_until(lambda: accepts("127.0.0.1", admin_port), 15, "the admin listener")
    config = next(tmp_path.glob("shield-*.toml"))
    page = browser.new_page()
    page.goto(admin_url(config))
    wait_until(page, "document.querySelector('#mode').dataset.mode === 'normal'", 10)
    assert page.is_disabled("#unpin")
    page.select_option("#pin-mode", "under_attack")
    page.select_option("#pin-duration", "30m")
    page.click("#pin-form button[type=submit]")
    said(page, "under attack pinned (30m)")
    wait_until(page, "document.querySelector('#mode').dataset.mode === 'under_attack'", 3)
    assert page.is_visible("#pinned") and "pinned by an operator" in page.inner_text("#mode-why")

    # `shieldwall top` by its function, so this runs before (and after) the command is registered
    argv = [
        sys.executable,
        "-c",
        "from shieldwall.cli.top import top; top()",
        "--once",
        "--config",
        str(config),
    ]
    done = subprocess.run(argv, check=False, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "UNDER ATTACK" in done.stdout and "pinned" in done.stdout and "requests/s" in done.stdout

    page.click("#unpin")
    said(page, "unpinned")
    wait_until(page, "document.querySelector('#mode').dataset.mode === 'normal'", 3)
    assert page.is_hidden("#pinned")


def test_without_a_token_or_with_a_wrong_one_the_page_says_how_to_get_the_address(
    browser: Browser, start_shield, tmp_path: Path
) -> None:
    admin_port = free_port()
    shield = start_shield(
        {
            "server": {"state_dir": str(tmp_path / "state")},
            "admin": {"enabled": True, "listen": f"127.0.0.1:{admin_port}"},
        }
    )
    shield.wait_until(lambda: accepts("127.0.0.1", admin_port), 15, "the admin listener")
    page = browser.new_page()
    page.goto(f"http://127.0.0.1:{admin_port}/")
    page.wait_for_selector("#need-token", state="visible", timeout=5_000)
    assert "shieldwall admin url" in page.inner_text("#need-token") and page.is_hidden("#main")
    page.goto(f"http://127.0.0.1:{admin_port}/#token=not-the-token-0123456789")
    page.reload()  # a new fragment alone does not load the page again
    wait_until(page, "document.querySelector('#need-token-title').textContent.includes('refused')", 5)
    assert page.is_hidden("#main")
