"""The campaign site as a real process: its routes, its counters, and a capacity that runs out the
way a real site's does (queueing, then quick 503s; connections capped; slow requests cut)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvloop

from helpers import procs
from shieldwall.drill import attacks
from shieldwall.drill.campaign_site import DEMO_PASSWORD, read_counters, reset_counters
from shieldwall.drill.client import Response, Session, Target
from shieldwall.drill.runtime import Bounds, Runtime

pytestmark = pytest.mark.integration

FORM = [("Content-Type", "application/x-www-form-urlencoded")]


def start_site(workdir: Path, *options: str) -> procs.ServerProcess:
    argv = [sys.executable, "-m", "shieldwall.drill.campaign_site", "--listen", "127.0.0.1:0", *options]
    proc = procs.ServerProcess.spawn(
        "campaign-site", argv, workdir / "campaign-site.stderr", capture_stdout=True
    )
    proc.read_announced_port("campaign site listening on 127.0.0.1:", procs.READY_TIMEOUT)
    procs.LIVE.append(proc)
    return proc


@pytest.fixture
def site(tmp_path: Path) -> Iterator[procs.ServerProcess]:
    proc = start_site(tmp_path, "--workers", "4", "--service-ms", "10")
    yield proc
    procs.stop(proc)


def target(proc: procs.ServerProcess) -> Target:
    return Target.parse(proc.url)


def test_the_routes_answer_like_a_campaign_site(site):
    async def visit() -> dict[str, Response]:
        session = Session(target(site), kind="legit")
        got = {}
        for path in ("/", "/static/app.css", "/static/app.js", "/static/logo.svg",
                     "/news/our-plan-for-schools", "/news/nope", "/search?q=plan", "/feed.xml", "/api/events",
                     "/donate", "/volunteer", "/account", "/nowhere"):  # fmt: skip
            got[path] = await session.request("GET", path)
        got["POST /donate"] = await session.request("POST", "/donate", FORM, b"amount=25&email=a%40b.org")
        got["POST /donate bad"] = await session.request("POST", "/donate", FORM, b"amount=lots")
        got["POST /volunteer"] = await session.request(
            "POST", "/volunteer", FORM, b"name=Ann&email=a%40b.org"
        )
        got["POST /login bad"] = await session.request("POST", "/login", FORM, b"user=ann&password=guess")
        password = DEMO_PASSWORD.replace(" ", "+")
        got["POST /login"] = await session.request(
            "POST", "/login", FORM, f"user=ann&password={password}".encode()
        )
        got["/account logged in"] = await session.request("GET", "/account")
        got["DELETE /"] = await session.request("DELETE", "/")
        await session.close()
        return got

    got = uvloop.run(visit())
    statuses = {name: response.status for name, response in got.items()}
    assert statuses == {
        "/": 200, "/static/app.css": 200, "/static/app.js": 200, "/static/logo.svg": 200,
        "/news/our-plan-for-schools": 200, "/news/nope": 404, "/search?q=plan": 200, "/feed.xml": 200,
        "/api/events": 200, "/donate": 200, "/volunteer": 200, "/account": 303, "/nowhere": 404,
        "POST /donate": 200, "POST /donate bad": 400, "POST /volunteer": 200, "POST /login bad": 401,
        "POST /login": 303, "/account logged in": 200, "DELETE /": 404,
    }  # fmt: skip
    cache = {name: response.header(b"cache-control") for name, response in got.items()}
    assert cache["/static/app.css"] == cache["/static/logo.svg"] == b"public, max-age=3600"
    assert cache["/news/our-plan-for-schools"] == b"public, max-age=60"
    assert cache["/search?q=plan"] == cache["POST /donate"] == b"no-store"
    assert cache["/account logged in"] == b"private, no-store"
    home = got["/"].body
    assert all(asset.encode() in home for asset in ("/static/app.css", "/static/app.js", "/static/logo.svg"))
    assert b"Our plan for schools" in got["/search?q=plan"].body
    assert got["/feed.xml"].header(b"content-type") == b"application/rss+xml"
    assert json.loads(got["/api/events"].body)[0]["path"].startswith("/news/")
    assert got["/account"].header(b"location") == b"/login"
    assert got["POST /login"].header(b"set-cookie").startswith(b"session=ann.")
    assert b"Hello, ann" in got["/account logged in"].body
    # the search costs ten times a page
    assert got["/search?q=plan"].latency > 5 * got["/news/our-plan-for-schools"].latency


def test_the_counters_tell_legit_from_attack_per_route_and_reset(site):
    async def traffic() -> tuple[object, object]:
        legit, attack, plain = (Session(target(site), kind=kind) for kind in ("legit", "attack", "whatever"))
        for _ in range(3):
            await legit.request("GET", "/")
        for _ in range(5):
            await attack.request("GET", "/search?q=x")
        await attack.request("POST", "/login", FORM, b"user=x&password=y")
        await plain.request("GET", "/feed.xml")
        for session in (legit, attack, plain):
            await session.close()
        before = await read_counters(target(site))
        assert await reset_counters(target(site))
        return before, await read_counters(target(site))

    before, after = uvloop.run(traffic())
    assert before.received == {"legit": 3, "attack": 6, "unmarked": 1}
    assert before.served == before.received and sum(before.rejected.values()) == 0
    assert before.workers == 4 and before.busy_s == pytest.approx(
        (3 * 10 + 5 * 100 + 20 + 10) / 1000, rel=0.5
    )
    assert sum(after.received.values()) == 0 and after.busy_s == 0.0

    # and per route, from the raw JSON
    async def raw() -> dict:
        session = Session(target(site), kind="legit")
        await session.request("GET", "/news/x")
        response = await session.request("GET", "/__drill/stats")
        await session.close()
        return json.loads(response.body)

    assert uvloop.run(raw())["routes"] == {"GET /news/*": {"legit": 1, "attack": 0, "unmarked": 0}}


def test_offered_more_than_its_capacity_it_queues_then_refuses(tmp_path):
    # 2 workers x 20 ms: 100 pages per second; 8 may wait; a flood of 40 connections gets 503s quickly
    proc = start_site(tmp_path, "--workers", "2", "--service-ms", "20", "--backlog", "8")
    try:

        async def main() -> tuple[attacks.Tally, list[float], list[float]]:
            runtime = Runtime.real(target(proc), timeout=5.0)
            probe = Session(target(proc), kind="legit")
            quiet = [(await probe.request("GET", "/")).latency for _ in range(5)]
            flood = attacks.DistributedFlood(sources=200, connections=40, bounds=Bounds(100_000, 2.0))
            running = asyncio.ensure_future(flood.run(runtime))
            await asyncio.sleep(0.5)
            busy = [await probe.request("GET", "/") for _ in range(10)]
            tally = await running
            await probe.close()
            return tally, quiet, [r.latency for r in busy if r.status == 200] or [9.9]

        started = time.monotonic()
        tally, quiet, busy = uvloop.run(main())
        assert time.monotonic() - started < 5
        counters = uvloop.run(read_counters(target(proc)))
    finally:
        procs.stop(proc)
    assert tally.statuses.get(503, 0) > tally.statuses.get(200, 0) > 0  # most were turned away
    assert counters.rejected["attack"] == tally.statuses[503]  # the origin's own 503s, counted as attack
    assert counters.busy_s / (counters.workers * counters.elapsed_s) > 0.5  # busy throughout the flood
    assert max(quiet) < 0.1 and max(busy) > 2 * max(quiet)  # and whoever got in waited in the backlog


def test_slow_connections_exhaust_its_connections_until_it_cuts_them(tmp_path):
    proc = start_site(tmp_path, "--max-connections", "20", "--client-timeout", "1.5")
    try:

        async def main() -> tuple[attacks.Tally, Response, Response]:
            runtime = Runtime.real(target(proc), timeout=2.0)
            slow = attacks.SlowConnections(
                connections=20, drip_seconds=0.3, sources=5, bounds=Bounds(1000, 2.5)
            )
            running = asyncio.ensure_future(slow.run(runtime))
            await asyncio.sleep(0.5)
            visitor = Session(target(proc), kind="legit")
            shut_out = await visitor.request("GET", "/")
            await visitor.close()
            tally = await running
            visitor = Session(target(proc), kind="legit")
            served = await visitor.request("GET", "/")
            await visitor.close()
            return tally, shut_out, served

        tally, shut_out, served = uvloop.run(main())
        counters = uvloop.run(read_counters(target(proc)))
    finally:
        procs.stop(proc)
    assert shut_out.status == 0 and shut_out.error in ("closed", "reset")
    assert counters.connections_refused >= 1
    assert tally.errors.get("closed by server", 0) >= 20  # cut after 1.5 s, then opened again
    assert 40 <= tally.sent <= 60 and served.status == 200
