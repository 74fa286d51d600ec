"""Challenges in the data plane, with fake transports and a FakeClock: a challenge rule answers the
proof-of-work page, a solved challenge earns a clearance cookie and a 303 back, the cookie lets the
next requests through (and only from the client it was issued to), the no-JavaScript wait works only
after its wait, forged answers are offences, and feeds and verified crawlers pass unchallenged."""

from __future__ import annotations

import re
from collections.abc import Callable

from fake_transport import FakeTransport
from rig import Rig

from shieldwall.challenge.solver import solve

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
UA = "Mozilla/5.0 (X11; Linux x86_64) Test/1.0"
RULES = [{"name": "pow", "action": "challenge", "match": {"path_prefix": "/"}}]


def challenge_rig(make_rig: Callable[..., Rig], **extra: object) -> Rig:
    return make_rig({"rules": RULES, "challenge": {"difficulty": 8}, **extra})


def get(target: str, *extra: str, ua: str = UA) -> bytes:
    lines = "".join(f"{line}\r\n" for line in (f"User-Agent: {ua}", *extra))
    return f"GET {target} HTTP/1.1\r\nHost: h\r\n{lines}\r\n".encode()


def page_tokens(response: bytes) -> tuple[str, int, str]:
    challenge = re.search(rb'data-c="([^"]+)"', response)
    difficulty = re.search(rb'data-d="(\d+)"', response)
    wait = re.search(rb'name="w" value="([^"]+)"', response)
    assert challenge and difficulty and wait, response[:300]
    return challenge[1].decode(), int(difficulty[1]), wait[1].decode()


def header(response: bytes, name: bytes) -> bytes | None:
    match = re.search(rb"\r\n" + name + rb": ([^\r]*)\r\n", response, re.IGNORECASE)
    return match[1] if match else None


def solve_and_verify(rig: Rig, client, transport, target: str = "/donate?x=1") -> bytes:
    client.data_received(get(target))
    page = transport.take()
    assert page.startswith(b"HTTP/1.1 403 ") and b"Cache-Control: no-store" in page
    challenge, difficulty, _ = page_tokens(page)
    client.data_received(get(f"/.shieldwall/verify?c={challenge}&n={solve(challenge, difficulty)}"))
    return transport.take()


def test_a_solved_challenge_earns_a_cookie_that_lets_the_visitor_through(make_rig) -> None:
    rig = challenge_rig(make_rig)
    answer = solve_and_verify(rig, rig.client, rig.client_t)
    assert answer.startswith(b"HTTP/1.1 303 ")
    assert header(answer, b"Location") == b"/donate?x=1", "back to the target, query and all"
    cookie = header(answer, b"Set-Cookie")
    assert cookie is not None and b"HttpOnly" in cookie and b"SameSite=Lax" in cookie
    assert b"Secure" not in cookie, "Secure only on TLS listeners"
    assert not rig.upstreams, "nothing reached the origin before the challenge was solved"
    value = cookie.split(b";")[0].decode()
    rig.client.data_received(get("/donate?x=1", f"Cookie: {value}"))
    assert rig.up.take().startswith(b"GET /donate?x=1 ")
    rig.origin_says(OK)
    assert rig.client_t.take().startswith(b"HTTP/1.1 200 OK")


def test_the_cookie_is_worthless_from_another_network_or_browser(make_rig) -> None:
    rig = challenge_rig(make_rig)
    answer = solve_and_verify(rig, rig.client, rig.client_t)
    value = (header(answer, b"Set-Cookie") or b"").split(b";")[0].decode()
    rig.client.data_received(get("/", f"Cookie: {value}", ua="curl/8"))
    assert rig.client_t.take().startswith(b"HTTP/1.1 403 "), "another User-Agent"
    other_t = FakeTransport(("198.51.100.7", 40000))
    rig.connect(other_t).data_received(get("/", f"Cookie: {value}"))
    assert other_t.take().startswith(b"HTTP/1.1 403 "), "another /24"
    forged = value[:-3] + ("AAA" if not value.endswith("AAA") else "BBB")
    rig.client.data_received(get("/", f"Cookie: {forged}"))
    assert rig.client_t.take().startswith(b"HTTP/1.1 403 "), "a tampered cookie"
    assert not rig.upstreams


def test_a_replayed_or_forged_answer_is_refused_and_counted_as_an_offence(make_rig) -> None:
    rig = challenge_rig(make_rig)
    rig.client.data_received(get("/"))
    challenge, difficulty, _ = page_tokens(rig.client_t.take())
    verify = f"/.shieldwall/verify?c={challenge}&n={solve(challenge, difficulty)}"
    rig.client.data_received(get(verify))
    assert rig.client_t.take().startswith(b"HTTP/1.1 303 ")
    rig.client.data_received(get(verify))
    assert rig.client_t.take().startswith(b"HTTP/1.1 403 "), "single use"
    rig.client.data_received(get("/.shieldwall/verify?c=forged&n=1"))
    assert rig.client_t.take().startswith(b"HTTP/1.1 403 ")
    assert rig.server.stats_refused["challenge_forged"] == 2
    assert rig.server.bans.table.recent_offences("203.0.113.7", rig.clock.wall()) == 2


def test_the_no_javascript_wait_counts_only_after_its_seconds(make_rig) -> None:
    rig = challenge_rig(make_rig)
    rig.client.data_received(get("/article"))
    _, _, wait = page_tokens(rig.client_t.take())
    rig.client.data_received(get(f"/.shieldwall/verify?w={wait}"))
    early = rig.client_t.take()
    assert early.startswith(b"HTTP/1.1 403 ")
    assert header(early, b"Refresh") is not None, "told when to come back with the same token"
    assert rig.server.stats_refused["challenge_forged"] == 0, "impatience is not an offence"
    rig.clock.advance(5)
    rig.client.data_received(get(f"/.shieldwall/verify?w={wait}"))
    answer = rig.client_t.take()
    assert answer.startswith(b"HTTP/1.1 303 ") and header(answer, b"Location") == b"/article"


def test_feeds_and_apis_are_exempt_but_still_rate_limited(make_rig) -> None:
    rules = [
        {
            "name": "feed-limit",
            "action": "limit",
            "match": {"path": "/feed.xml"},
            "limit": {"rate": 0.01, "burst": 1},
        },
        *RULES,
    ]
    rig = make_rig({"rules": rules, "challenge": {"difficulty": 8}, "bans": {"enabled": False}})
    rig.client.data_received(get("/feed.xml"))
    assert rig.up.take().startswith(b"GET /feed.xml "), "a feed reader is not challenged"
    rig.origin_says(OK)
    rig.client_t.take()
    rig.client.data_received(get("/feed.xml"))
    assert rig.client_t.take().startswith(b"HTTP/1.1 429 "), "but it is limited"


def test_a_crawler_on_its_published_list_passes_and_an_impostor_is_challenged(make_rig, tmp_path) -> None:
    ranges = tmp_path / "googlebot.txt"
    ranges.write_text("203.0.113.0/24\n")
    rig = challenge_rig(make_rig, crawlers={"dns": False, "ranges": {"google": str(ranges)}})
    googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    rig.client.data_received(get("/news", ua=googlebot))
    assert rig.up.take().startswith(b"GET /news "), "203.0.113.7 is on Google's list"
    impostor_t = FakeTransport(("198.51.100.9", 40000))
    rig.connect(impostor_t).data_received(get("/news", ua=googlebot))
    assert impostor_t.take().startswith(b"HTTP/1.1 403 ")


def test_a_claimed_crawler_is_looked_up_in_dns_and_passes_once_verified(make_rig) -> None:
    rig = challenge_rig(make_rig)
    asked: list[str] = []

    async def resolve(ip: str) -> dict[str, list[str]]:
        asked.append(ip)
        return {"crawl-203-0-113-7.googlebot.com": [ip]}

    rig.server.challenges.resolve = resolve
    googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    rig.client.data_received(get("/news", ua=googlebot))
    assert rig.client_t.take().startswith(b"HTTP/1.1 403 "), "challenged while the lookup runs"
    rig.loop.run_until_complete(next(iter(rig.server.challenges.lookups)))
    assert asked == ["203.0.113.7"]
    rig.client.data_received(get("/news", ua=googlebot))
    assert rig.up.take().startswith(b"GET /news ")


def test_the_verify_url_is_answered_without_rules_and_never_forwarded(make_rig) -> None:
    rig = make_rig()
    rig.client.data_received(get("/.shieldwall/verify?c=x&n=1"))
    assert rig.client_t.take().startswith(b"HTTP/1.1 403 ")
    assert not rig.upstreams
