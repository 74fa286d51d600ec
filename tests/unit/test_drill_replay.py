"""The replay of an operator's access log: Combined/Common Log Format lines parsed (times with their
zones, escaped quotes), other lines reported with their numbers and why, clients mapped to loopback
sources that keep /24s together, and the requests sent again time-compressed, in order, per client."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

import pytest
from test_drill_traffic import FakeSite

from shieldwall.drill.loopback import LEGIT_SOURCES
from shieldwall.drill.replay import LogEntry, Replay, map_clients, parse_line, parse_time, read_log
from shieldwall.drill.runtime import Bounds
from shieldwall.drill.visitors import VisitLog

COMBINED = (
    '203.0.113.7 - alice [10/Oct/2024:13:55:36 +0200] "GET /news/x?a=1 HTTP/1.1" 200 2326 '
    '"https://example.org/" "Mozilla/5.0 (X11; \\"quoted\\")"'
)


def test_a_combined_line_is_parsed_with_its_zone():
    entry = parse_line(COMBINED)
    assert entry == LogEntry(
        at=datetime(2024, 10, 10, 11, 55, 36, tzinfo=UTC).timestamp(),
        client="203.0.113.7",
        method="GET",
        target="/news/x?a=1",
        user_agent='Mozilla/5.0 (X11; "quoted")',
        referer="https://example.org/",
    )


def test_a_common_format_line_has_no_referer_or_agent():
    entry = parse_line('2001:db8::5 - - [01/Jan/2025:00:00:00 -0130] "HEAD /feed.xml HTTP/1.0" 304 -')
    assert isinstance(entry, LogEntry)
    assert (entry.client, entry.method, entry.user_agent, entry.referer) == ("2001:db8::5", "HEAD", "", "")
    assert entry.at == datetime(2025, 1, 1, 1, 30, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("hello world", "not in Combined or Common Log Format"),
        ('host - - [10/Oct/2024:13:55:36 +0200] "GET / HTTP/1.1" 200 1', "'host' is not an IP address"),
        ('1.2.3.4 - - [10/Foo/2024:13:55:36 +0200] "GET / HTTP/1.1" 200 1', "not a log time"),
        ('1.2.3.4 - - [10/Oct/2024:13:55:36 +0200] "-" 400 0 "-" "-"', "is not METHOD TARGET HTTP/x"),
        ('1.2.3.4 - - [10/Oct/2024:13:55:36 +0200] "POST /login HTTP/1.1" 200 1', "POST is not replayed"),
        ('1.2.3.4 - - [10/Oct/2024:13:55:36 +0200] "GET http://x/ HTTP/1.1" 200 1', "is not a path"),
        ("1.2.3.4 " + "x" * 20_000, "longer than"),
    ],
)
def test_lines_that_are_not_replayed_say_why(line, reason):
    got = parse_line(line)
    assert isinstance(got, str) and reason in got


def test_read_log_numbers_its_problems_skips_blank_lines_and_sorts_by_time():
    lines = [
        '198.51.100.1 - - [10/Oct/2024:13:55:40 +0000] "GET /b HTTP/1.1" 200 1\n',
        "\n",
        "junk\n",
        '198.51.100.2 - - [10/Oct/2024:13:55:30 +0000] "GET /a HTTP/1.1" 200 1\n',
        '198.51.100.2 - - [10/Oct/2024:13:55:31 +0000] "DELETE /a HTTP/1.1" 200 1\n',
    ]
    parsed = read_log(lines)
    assert [entry.target for entry in parsed.entries] == ["/a", "/b"]
    assert [(problem.line, str(problem)) for problem in parsed.problems] == [
        (3, "line 3: not in Combined or Common Log Format"),
        (5, "line 5: DELETE is not replayed (a log holds no request body)"),
    ]
    assert parsed.skipped == 2
    capped = read_log(lines, max_lines=2)
    assert capped.problems[-1].line == 3 and "longer than 2 lines" in capped.problems[-1].reason


def test_parse_time_is_locale_free_and_strict():
    assert parse_time("01/Feb/2024:00:00:00 +0000") == datetime(2024, 2, 1, tzinfo=UTC).timestamp()
    with pytest.raises(ValueError, match="not a log time"):
        parse_time("2024-02-01T00:00:00Z")


def test_clients_of_one_network_stay_together_in_one_loopback_24():
    mapping = map_clients(
        ["203.0.113.7", "203.0.113.9", "198.51.100.1", "203.0.113.7", "2001:db8::1", "2001:db8::2"]
    )
    assert len(mapping) == 5
    pool = ipaddress.IPv4Network(LEGIT_SOURCES)
    assert all(ipaddress.IPv4Address(source) in pool for source in mapping.values())

    def net(client: str) -> str:
        return str(ipaddress.IPv4Network(f"{mapping[client]}/24", strict=False))

    assert net("203.0.113.7") == net("203.0.113.9") != net("198.51.100.1")
    assert net("2001:db8::1") == net("2001:db8::2") != net("203.0.113.7")
    assert len(set(mapping.values())) == 5


def entry(at: float, client: str, target: str) -> LogEntry:
    return LogEntry(1_700_000_000 + at, client, "GET", target, "UA/1", "-")


def test_replay_sends_each_clients_requests_compressed_in_time_and_loops():
    site = FakeSite(latency=0.0)
    clock = site.clock
    entries = (entry(0, "203.0.113.7", "/a"), entry(10, "198.51.100.1", "/b"), entry(20, "203.0.113.7", "/c"))
    log = VisitLog()
    start = clock.monotonic()
    replay = Replay(entries, speedup=10.0, bounds=Bounds(1000, 5.0))
    site.run(replay.run(site.runtime(), log=log))
    sent = [(round(s.at - start, 3), s.target) for s in site.sent]
    # 20 s of log at 10x: one pass takes 2 s, so 5 s hold two and a half passes
    assert sent == [
        (0.0, "/a"), (1.0, "/b"), (2.0, "/c"), (2.0, "/a"), (3.0, "/b"), (4.0, "/c"), (4.0, "/a"),
    ]  # fmt: skip
    assert all(s.kind == "legit" for s in site.sent)
    assert {s.source for s in site.sent if s.target in ("/a", "/c")} == {
        map_clients(["203.0.113.7"])["203.0.113.7"]
    }
    assert [o.habit for o in log.outcomes] == ["replay"] * 7
    assert [h for h in site.sent[0].headers if h[0] == "User-Agent"] == [("User-Agent", "UA/1")]


def test_replay_refuses_an_empty_log_and_a_silly_speedup():
    with pytest.raises(ValueError, match="no request"):
        Replay(())
    with pytest.raises(ValueError, match="speedup"):
        Replay((entry(0, "203.0.113.7", "/"),), speedup=0)


def test_a_replayed_client_solves_challenges_with_its_own_user_agent():
    site = FakeSite(latency=0.0)
    solved: list[str] = []

    async def solve(response, session):
        if response.target != "/a":
            return None
        solved.append(response.target)  # a solver sends its answer with a browser's headers
        return await session.request("GET", "/verify", [("User-Agent", "Chrome/124"), ("Accept", "*/*")])

    replay = Replay((entry(0, "203.0.113.7", "/a"),), bounds=Bounds(1, 60.0), solve_challenge=solve)
    log = VisitLog()
    site.run(replay.run(site.runtime(), log=log))
    assert solved == ["/a"] and [s.target for s in site.sent] == ["/a", "/verify"]
    for sent in site.sent:  # the clearance is bound to the User-Agent: the log's, every time
        assert [value for name, value in sent.headers if name == "User-Agent"] == ["UA/1"]
    assert [(o.path, o.challenged) for o in log.outcomes] == [("/a", True)]
