"""Drill traffic on real sockets: sources bound across 127.0.0.0/8, headers on the wire in order,
scenarios that stop at their bounds in real time, and a before/during/after run against the
campaign site (no shield) scored end to end."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvloop
from test_drill_campaign_site import start_site  # the campaign site as a process, as that module starts it

from helpers import procs
from shieldwall.drill import attacks
from shieldwall.drill.campaign_site import read_counters
from shieldwall.drill.client import Session, Target
from shieldwall.drill.loopback import LEGIT_SOURCES, source_addresses
from shieldwall.drill.runtime import GRACE, Bounds, Runtime
from shieldwall.drill.scorecard import Mark, Scorecard, phase_figures, render, time_to_mitigate
from shieldwall.drill.visitors import Population, VisitLog, browser_headers

pytestmark = pytest.mark.integration


@pytest.fixture
def site(tmp_path: Path) -> Iterator[procs.ServerProcess]:
    proc = start_site(tmp_path, "--workers", "4", "--service-ms", "10", "--backlog", "16")
    yield proc
    procs.stop(proc)


def test_sessions_connect_from_the_source_they_are_given():
    sources = source_addresses(100, 1, pool=LEGIT_SOURCES, per_prefix=4) + source_addresses(100, 2)
    peers: list[str] = []

    async def main() -> list[int]:
        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            peers.append(writer.get_extra_info("peername")[0])
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        statuses = []
        for source in sources:
            session = Session(Target("127.0.0.1", port, "t"), kind="legit", source=source)
            statuses.append((await session.request("GET", "/")).status)
            await session.close()
        server.close()
        await server.wait_closed()
        return statuses

    assert uvloop.run(main()) == [204] * 200
    assert peers == sources


def test_headers_reach_the_server_in_the_order_given(origin):
    async def main() -> dict:
        session = Session(Target.parse(origin.url), kind="legit", source="127.16.0.9")
        session.jar.cookies["session"] = "abc"
        response = await session.request("GET", "/echo", browser_headers("document", "http://x/"))
        await session.close()
        return json.loads(response.body)

    seen = uvloop.run(main())
    names = [name for name, _ in seen["headers"]]
    expected = [
        "Host",
        *(name for name, _ in browser_headers("document", "http://x/")),
        "Cookie",
        "x-drill-kind",
    ]
    assert names == expected
    assert seen["headers"][-1] == ["x-drill-kind", "legit"]


def test_timeouts_and_refusals_come_back_as_errors():
    with (
        socket.create_server(("127.0.0.1", 0)) as silent,  # accepts (in the kernel) and never answers
        socket.socket() as deaf,  # bound, never listening: connections to it are refused
    ):
        deaf.bind(("127.0.0.1", 0))

        async def main() -> tuple:
            slow = Session(Target("127.0.0.1", silent.getsockname()[1], "t"), kind="legit", timeout=0.3)
            refused = Session(Target("127.0.0.1", deaf.getsockname()[1], "t"), kind="legit")
            results = await slow.request("GET", "/"), await refused.request("GET", "/")
            await slow.close()
            return results

        timed_out, refused = uvloop.run(main())
    assert (timed_out.status, timed_out.error) == (
        0,
        "timeout",
    ) and 0.29 <= timed_out.latency < 2.0  # (the loop clock is ms-grained)
    assert (refused.status, refused.error) == (0, "refused")


def test_a_scenario_stops_at_its_count_and_the_site_saw_exactly_that(site):
    async def main():
        tally = await attacks.SingleSourceFlood(connections=10, bounds=Bounds(300, 30)).run(
            Runtime.real(Target.parse(site.url))
        )
        return tally, await read_counters(Target.parse(site.url))

    tally, counters = uvloop.run(main())
    assert tally.sent == tally.answered == 300
    assert counters.received["attack"] == 300


@pytest.mark.parametrize(
    "scenario",
    [
        attacks.DistributedFlood(sources=500, connections=50, bounds=Bounds(10**7, 1.0)),
        attacks.PostFlood(sources=100, connections=20, bounds=Bounds(10**7, 1.0)),
        attacks.PulseWaves(attacks.SingleSourceFlood(connections=5), 0.3, 0.3, bounds=Bounds(10**7, 1.0)),
    ],
    ids=lambda s: s.name,
)
def test_a_scenario_stops_at_its_time(site, scenario):
    async def main():
        return await scenario.run(Runtime.real(Target.parse(site.url), timeout=2.0))

    started = time.monotonic()
    tally = uvloop.run(main())
    took = time.monotonic() - started
    assert 0.95 <= took <= 1.0 + GRACE + 0.3
    assert tally.sent > 50 and tally.answered + sum(tally.errors.values()) <= tally.sent


def test_low_and_slow_sends_its_rate_from_every_source(site):
    async def main():
        flood = attacks.LowAndSlow(
            sources=100, per_source_rate=2.0, connections=40, bounds=Bounds(10**6, 2.0)
        )
        return await flood.run(Runtime.real(Target.parse(site.url)))

    tally = uvloop.run(main())
    assert 0.8 * 400 <= tally.sent <= 100 * (2 * 2 + 1)  # sources x rate x seconds, none over its rate
    assert tally.answered >= 0.95 * tally.sent  # (some 503s: a search costs ten pages)


def test_a_flash_crowd_of_visitors_is_served_and_counted_as_legit(site):
    crowd = attacks.FlashCrowd(
        visitors=30, arrive_within=0.5, think_seconds=(0.1, 0.3), bounds=Bounds(10**6, 8.0)
    )

    async def main():
        tally = await crowd.run(Runtime.real(Target.parse(site.url)))
        return tally, await read_counters(Target.parse(site.url))

    tally, counters = uvloop.run(main())
    assert tally.kind == "legit" and tally.sent == len(crowd.log.outcomes) > 60
    assert all(o.ok for o in crowd.log.outcomes)
    assert counters.received == {"legit": tally.sent, "attack": 0, "unmarked": 0}
    assert len({o.visitor for o in crowd.log.outcomes}) == 30


def test_before_during_after_against_an_unshielded_site(site):
    """Visitors throughout, a flood at 10x capacity in the middle: the scorecard of an exposed origin."""
    site_target = Target.parse(site.url)
    runtime = Runtime.real(site_target, timeout=3.0)
    population = Population(
        visitors=12, think_seconds=(0.1, 0.4), arrive_within=0.2, nat_group=3, bounds=Bounds(10**6, 4.5)
    )
    flood = attacks.DistributedFlood(sources=1000, connections=80, bounds=Bounds(10**6, 1.5))
    log = VisitLog()

    async def main() -> list[Mark]:
        clock = runtime.clock
        tally = attacks.Tally(flood.name)

        async def mark() -> Mark:
            return Mark(clock.monotonic(), tally.sent, await read_counters(site_target))

        async def attack_phase() -> list[Mark]:
            marks = [await mark()]
            await asyncio.sleep(1.5)
            marks.append(await mark())
            attack = asyncio.ensure_future(flood.run(runtime, tally=tally))
            for _ in range(3):
                await asyncio.sleep(0.5)
                marks.append(await mark())
            await attack
            await asyncio.sleep(1.2)
            marks.append(await mark())
            return marks

        marks, _ = await asyncio.gather(attack_phase(), population.run(runtime, log=log))
        return marks

    marks = uvloop.run(main())
    final = uvloop.run(read_counters(site_target))
    start, attack_start, attack_end, end = marks[0], marks[1], marks[4], marks[5]
    before = phase_figures("before", start, attack_start, log.outcomes)
    during = phase_figures("during", attack_start, attack_end, log.outcomes)
    after = phase_figures("after", attack_end, end, log.outcomes)
    card = Scorecard(
        "no shield", flood.name, (before, during, after),
        time_to_mitigate_s=time_to_mitigate(marks, attack_start.at, attack_end.at),
    )  # fmt: skip
    print(render([card]))
    assert before.legit_requests > 20 and before.legit_success == 1.0
    assert before.attack_sent == 0 and before.origin_utilisation < 0.6
    assert during.attack_sent > 1000 and during.leakage > 0.95  # nothing stands between flood and origin
    assert during.origin_utilisation > 0.8 and during.origin_rejected > 0
    assert during.legit_p95_ms > 2 * before.legit_p95_ms or during.legit_success < 0.9  # visitors suffer
    assert after.legit_requests > 0 and after.attack_sent == 0
    assert card.time_to_mitigate_s is None and card.peacetime_false_positives == 0
    # every visitor request reached the origin and was counted as legit
    assert final.received["legit"] == sum(1 for o in log.outcomes if o.status) and log.outcomes
    habits = Counter(o.habit for o in log.outcomes)
    assert set(habits) >= {"reader", "rss"}
    assert json.dumps(card.to_json())
