"""Verified good crawlers: User-Agent claims, the forward-confirmed reverse DNS rule, the TTL cache,
the cap on pending lookups, eviction bounds, and operator-supplied address lists. No DNS is done:
lookups are fed to the verifier as a resolver would report them."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shieldwall.net.crawler_list import CRAWLERS
from shieldwall.net.crawlers import CrawlerStatus, CrawlerVerifier, claimed_crawler, load_crawler_ranges
from shieldwall.net.ipdata import DataFileError

FIXTURES = Path(__file__).parent.parent / "fixtures" / "ipdata"
BY_NAME = {crawler.name: crawler for crawler in CRAWLERS}
GOOGLE, BING, DUCK = BY_NAME["google"], BY_NAME["bing"], BY_NAME["duckduckgo"]
VERIFIED, FAILED, UNKNOWN = CrawlerStatus.VERIFIED, CrawlerStatus.FAILED, CrawlerStatus.UNKNOWN

BOT_IP = "66.249.66.1"
BOT_NAME = "crawl-66-249-66-1.googlebot.com"


# --- claims ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user_agent", "name"),
    [
        (b"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "google"),
        (
            b"Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 "
            b"(KHTML, like Gecko) Chrome/124.0.6367.201 Mobile Safari/537.36 "
            b"(compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "google",
        ),
        (b"Googlebot-Image/1.0", "google"),
        (b"Mozilla/5.0 (compatible; Google-InspectionTool/1.0;)", "google"),
        (b"AdsBot-Google (+http://www.google.com/adsbot.html)", "google"),
        (b"Mediapartners-Google", "google"),
        (b"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "bing"),
        (b"msnbot/2.0b (+http://search.msn.com/msnbot.htm)", "bing"),
        (
            b"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
            b"Version/17.4 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
            "apple",
        ),
        (b"Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)", "yandex"),
        (b"Mozilla/5.0 (compatible; YandexImages/3.0; +http://yandex.com/bots)", "yandex"),
        (b"Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)", "baidu"),
        (
            b"Mozilla/5.0 (compatible; Baiduspider-render/2.0; +http://www.baidu.com/search/spider.html)",
            "baidu",
        ),
        (b"DuckDuckBot/1.1; (+http://duckduckgo.com/duckduckbot.html)", "duckduckgo"),
        # Forgeries claim too (verification, not the claim, tells them apart) ...
        (b"curl/8.5.0 Googlebot", "google"),
        # ... and a User-Agent with a hint of one engine and the token of another claims the latter.
        (b"YandexSearch/24.10 (compatible; bingbot/2.0)", "bing"),
    ],
)
def test_user_agent_claims_a_crawler(user_agent, name):
    crawler = claimed_crawler(user_agent)
    assert crawler is not None
    assert crawler.name == name


@pytest.mark.parametrize(
    "user_agent",
    [
        b"",
        b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        b"Chrome/124.0.0.0 Safari/537.36",
        b"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        b"Version/17.4.1 Mobile/15E148 Safari/604.1",
        # A Yandex app used by a person: a hint, no crawler token.
        b"Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 (KHTML, like Gecko) YandexSearch/24.10 "
        b"Mobile Safari/537.36",
        b"Mozilla/5.0 (compatible; SomeOtherBot/1.0)",
        b"googlebot/2.1",  # the tokens are case-sensitive, as the crawlers send them
        b"Google Chrome Helper",
        b"Mozilla/5.0 " + b"x" * 600 + b" Googlebot/2.1",  # longer than any crawler's: not looked at
    ],
)
def test_user_agent_claims_nothing(user_agent):
    assert claimed_crawler(user_agent) is None


@given(st.binary(max_size=600))
def test_claims_need_a_token_of_the_crawler_claimed(user_agent):
    crawler = claimed_crawler(user_agent)
    if crawler is not None:
        assert len(user_agent) <= 512
        assert any(token in user_agent for token in crawler.tokens)


# --- the forward-confirmed reverse DNS rule -----------------------------------------------------


def _verified_after(ptr_and_forward: dict[str, list[str]], ip: str = BOT_IP, crawler=GOOGLE) -> CrawlerStatus:
    verifier = CrawlerVerifier()
    assert verifier.status(ip, crawler, 0.0) is UNKNOWN
    assert verifier.begin(ip, crawler, 0.0)
    verifier.complete(ip, ptr_and_forward, 1.0)
    assert verifier.pending == 0
    return verifier.status(ip, crawler, 2.0)


@pytest.mark.parametrize(
    ("resolved", "expected"),
    [
        ({BOT_NAME: [BOT_IP]}, VERIFIED),
        ({"rate-limited-proxy-66-249-66-1.google.com.": [BOT_IP]}, VERIFIED),  # root dot, google.com
        ({"CRAWL-66-249-66-1.GoogleBot.COM": [BOT_IP]}, VERIFIED),  # DNS names ignore case
        ({BOT_NAME: ["66.249.66.2", BOT_IP]}, VERIFIED),  # one of several addresses
        ({BOT_NAME: ["not an address", "::ffff:66.249.66.1"]}, VERIFIED),  # garbage skipped, mapped = IPv4
        ({"googlebot.com": [BOT_IP]}, VERIFIED),  # the domain itself
        ({"evilgooglebot.com": [BOT_IP]}, FAILED),  # not on a label boundary
        ({"crawl.googlebot.com.evil.example": [BOT_IP]}, FAILED),
        ({"crawl.googlebot.co": [BOT_IP]}, FAILED),
        ({"crawl.gae.googleusercontent.com": [BOT_IP]}, FAILED),  # Cloud customers' names: left out
        ({BOT_NAME: ["66.249.66.2"]}, FAILED),  # the name does not resolve back to the address
        ({BOT_NAME: []}, FAILED),
        ({}, FAILED),  # no PTR record at all
        # The attacker's own name resolves back, Google's does not: the SAME name must do both.
        ({"fake.attacker.example": [BOT_IP], BOT_NAME: ["66.249.66.2"]}, FAILED),
        ({"fake.attacker.example": [BOT_IP], BOT_NAME: [BOT_IP]}, VERIFIED),
        ({"msnbot-66-249-66-1.search.msn.com": [BOT_IP]}, FAILED),  # Bing's name is not Google's
    ],
)
def test_forward_confirmed_reverse_dns(resolved, expected):
    assert _verified_after(resolved) is expected


def test_verdict_covers_every_crawler_whichever_was_claimed():
    verifier = CrawlerVerifier()
    ip = "157.55.39.1"
    assert verifier.begin(ip, GOOGLE, 0.0)  # claimed Googlebot ...
    verifier.complete(ip, {"msnbot-157-55-39-1.search.msn.com": [ip]}, 0.0)  # ... but is Bing's
    assert verifier.status(ip, GOOGLE, 1.0) is FAILED
    assert verifier.status(ip, BING, 1.0) is VERIFIED


def test_ipv6_forward_answers_are_compared_normalised():
    ip = "2001:4860:4801:10::1"
    resolved = {"crawl-2001-4860-4801-10--1.googlebot.com": ["2001:4860:4801:0010:0000:0000:0000:0001"]}
    assert _verified_after(resolved, ip) is VERIFIED
    assert _verified_after({BOT_NAME: ["2001:4860:4801:10::2"]}, ip) is FAILED


def test_ipv4_mapped_client_is_one_entry_with_its_ipv4_address():
    verifier = CrawlerVerifier()
    mapped = "::ffff:66.249.66.1"
    assert verifier.begin(mapped, GOOGLE, 0.0)
    assert not verifier.begin(BOT_IP, GOOGLE, 0.0)  # the same address: already pending
    verifier.complete(mapped, {BOT_NAME: [BOT_IP]}, 0.0)
    assert verifier.status(BOT_IP, GOOGLE, 1.0) is VERIFIED
    assert verifier.status(mapped, GOOGLE, 1.0) is VERIFIED
    assert len(verifier) == 1


def test_names_to_resolve_keeps_only_crawler_names():
    verifier = CrawlerVerifier()
    names = [
        "fake.attacker.example",
        "CRAWL-1.GOOGLEBOT.COM.",
        "crawl-1.googlebot.com",  # the same name again
        "evilgooglebot.com",
        "a.search.msn.com",
        "b.yandex.ru",
        "c.baidu.jp",
        "d.applebot.apple.com",
    ]
    assert verifier.names_to_resolve(names) == [
        "crawl-1.googlebot.com",
        "a.search.msn.com",
        "b.yandex.ru",
        "c.baidu.jp",
    ]  # at most four: a real crawler address has one


def test_text_that_is_not_an_address():
    verifier = CrawlerVerifier()
    assert verifier.status("crawl.googlebot.com", GOOGLE, 0.0) is FAILED
    assert not verifier.begin("1.2.3", GOOGLE, 0.0)
    verifier.complete("1.2.3", {BOT_NAME: ["1.2.3"]}, 0.0)
    verifier.fail("::1%eth0", 0.0)
    assert len(verifier) == 0
    assert verifier.pending == 0


# --- time-to-live ---------------------------------------------------------------------------------


def test_verdicts_expire_after_their_ttl():
    verifier = CrawlerVerifier(verified_ttl=100.0, failed_ttl=50.0, error_ttl=10.0)
    verifier.complete(BOT_IP, {BOT_NAME: [BOT_IP]}, 1000.0)
    verifier.complete("192.0.2.1", {"fake.example": ["192.0.2.1"]}, 1000.0)
    verifier.fail("192.0.2.2", 1000.0)  # a timeout
    assert [verifier.status(ip, GOOGLE, 1009.9) for ip in (BOT_IP, "192.0.2.1", "192.0.2.2")] == [
        VERIFIED,
        FAILED,
        FAILED,
    ]
    assert verifier.status("192.0.2.2", GOOGLE, 1010.0) is UNKNOWN  # errors are retried soonest
    assert verifier.status("192.0.2.1", GOOGLE, 1049.9) is FAILED
    assert verifier.status("192.0.2.1", GOOGLE, 1050.0) is UNKNOWN
    assert verifier.status(BOT_IP, GOOGLE, 1099.9) is VERIFIED
    assert verifier.status(BOT_IP, GOOGLE, 1100.0) is UNKNOWN
    assert len(verifier) == 0  # expired entries are dropped when met


def test_a_failed_refresh_keeps_a_valid_verification_but_not_an_expired_one():
    verifier = CrawlerVerifier(verified_ttl=100.0, error_ttl=10.0)
    verifier.complete(BOT_IP, {BOT_NAME: [BOT_IP]}, 0.0)
    verifier.fail(BOT_IP, 50.0)  # a resolver hiccup
    assert verifier.status(BOT_IP, GOOGLE, 60.0) is VERIFIED
    verifier.fail(BOT_IP, 100.0)  # the verification has just expired
    assert verifier.status(BOT_IP, GOOGLE, 105.0) is FAILED
    assert verifier.status(BOT_IP, GOOGLE, 110.0) is UNKNOWN


def test_a_new_answer_replaces_the_old_one():
    verifier = CrawlerVerifier()
    verifier.complete(BOT_IP, {BOT_NAME: [BOT_IP]}, 0.0)
    verifier.complete(BOT_IP, {}, 1.0)  # the PTR record is gone
    assert verifier.status(BOT_IP, GOOGLE, 2.0) is FAILED
    verifier.complete(BOT_IP, {BOT_NAME: [BOT_IP]}, 3.0)
    assert verifier.status(BOT_IP, GOOGLE, 4.0) is VERIFIED
    assert len(verifier) == 1


# --- pending lookups ------------------------------------------------------------------------------


def test_pending_lookups_are_capped():
    verifier = CrawlerVerifier(max_pending=2)
    assert verifier.begin("192.0.2.1", GOOGLE, 0.0)
    assert not verifier.begin("192.0.2.1", GOOGLE, 0.0)  # already under way
    assert verifier.begin("192.0.2.2", GOOGLE, 0.0)
    assert not verifier.begin("192.0.2.3", GOOGLE, 0.0)  # the cap
    assert verifier.pending == 2
    verifier.complete("192.0.2.1", {}, 1.0)
    assert verifier.begin("192.0.2.3", GOOGLE, 1.0)
    verifier.fail("192.0.2.2", 1.0)
    assert verifier.begin("192.0.2.4", GOOGLE, 1.0)
    assert verifier.pending == 2


def test_lookups_never_reported_free_their_slot_after_the_timeout():
    verifier = CrawlerVerifier(max_pending=1, lookup_timeout=5.0, error_ttl=30.0)
    assert verifier.begin("192.0.2.1", GOOGLE, 0.0)
    assert not verifier.begin("192.0.2.2", GOOGLE, 4.9)
    assert verifier.begin("192.0.2.2", GOOGLE, 5.0)  # the first is overdue: counted as an error
    assert verifier.status("192.0.2.1", GOOGLE, 5.0) is FAILED
    assert verifier.status("192.0.2.1", GOOGLE, 35.0) is UNKNOWN
    assert verifier.begin("192.0.2.2", GOOGLE, 10.0)  # its own overdue lookup: started afresh
    assert verifier.pending == 1


def test_flood_of_forged_user_agents_costs_bounded_lookups():
    verifier = CrawlerVerifier(max_pending=8)
    started = [f"198.51.100.{n}" for n in range(200) if verifier.begin(f"198.51.100.{n}", GOOGLE, 0.0)]
    assert len(started) == 8
    for ip in started:
        verifier.complete(ip, {f"host-{ip}.attacker.example": [ip]}, 0.5)
    # Each address that failed is not looked up again while its failure is remembered.
    assert all(verifier.status(ip, GOOGLE, 1.0) is FAILED for ip in started)


def test_no_lookup_for_a_crawler_dns_cannot_verify():
    verifier = CrawlerVerifier()
    assert not verifier.begin("20.191.45.212", DUCK, 0.0)
    assert verifier.status("20.191.45.212", DUCK, 0.0) is FAILED
    no_dns = CrawlerVerifier(dns=False)
    assert no_dns.status(BOT_IP, GOOGLE, 0.0) is FAILED
    assert not no_dns.begin(BOT_IP, GOOGLE, 0.0)


# --- bounds and eviction --------------------------------------------------------------------------


def test_least_recently_used_verification_is_evicted_first():
    verifier = CrawlerVerifier(max_verified=2)
    for n in (1, 2):
        verifier.complete(f"66.249.66.{n}", {f"crawl-{n}.googlebot.com": [f"66.249.66.{n}"]}, 0.0)
    assert verifier.status("66.249.66.1", GOOGLE, 1.0) is VERIFIED  # .1 is now the most recent
    verifier.complete("66.249.66.3", {"crawl-3.googlebot.com": ["66.249.66.3"]}, 2.0)
    assert [verifier.status(f"66.249.66.{n}", GOOGLE, 3.0) for n in (1, 2, 3)] == [
        VERIFIED,
        UNKNOWN,
        VERIFIED,
    ]


def test_a_flood_of_failures_never_evicts_a_verified_crawler():
    verifier = CrawlerVerifier(max_verified=1, max_failed=4)
    verifier.complete(BOT_IP, {BOT_NAME: [BOT_IP]}, 0.0)
    for n in range(1000):
        verifier.complete(f"10.0.{n // 256}.{n % 256}", {}, 1.0)
        verifier.fail(f"10.1.{n // 256}.{n % 256}", 1.0)
    assert len(verifier) == 1 + 4
    assert verifier.status(BOT_IP, GOOGLE, 2.0) is VERIFIED
    assert verifier.status("10.1.3.231", GOOGLE, 2.0) is FAILED  # the newest failure is kept
    assert verifier.status("10.0.0.0", GOOGLE, 2.0) is UNKNOWN  # the oldest is gone


_OPS = st.lists(
    st.tuples(
        st.sampled_from(["begin", "good", "bad", "fail", "status"]),
        st.integers(0, 11),  # which address
        st.floats(0.0, 40.0),  # time passing before the operation
    ),
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(_OPS)
def test_tables_stay_bounded_and_never_verify_wrongly(ops):
    verifier = CrawlerVerifier(
        verified_ttl=100.0,
        failed_ttl=50.0,
        error_ttl=20.0,
        lookup_timeout=5.0,
        max_verified=3,
        max_failed=4,
        max_pending=2,
    )
    # address -> (verified?, verified until, until when some verdict may still stand), as reported
    truth: dict[str, tuple[bool, float, float]] = {}
    unreported: set[str] = set()  # begun and not reported: may be given up as an error at any time
    now = 0.0
    for op, n, step in ops:
        now += step
        plain = f"66.249.66.{n}"
        ip = plain if n % 2 else f"::ffff:{plain}"  # both spellings of one address
        verified, until, latest = truth.get(plain, (False, 0.0, 0.0))
        if op == "begin":
            if verifier.begin(ip, GOOGLE, now):
                unreported.add(plain)
        elif op == "good":
            verifier.complete(ip, {f"crawl-{n}.googlebot.com": [plain]}, now)
            truth[plain] = (True, now + 100.0, now + 100.0)
        elif op == "bad":
            verifier.complete(ip, {f"crawl-{n}.googlebot.com": ["192.0.2.1"]}, now)
            truth[plain] = (False, 0.0, now + 50.0)
        elif op == "fail":
            verifier.fail(ip, now)
            valid = verified and now < until  # kept, unless evicted: then the failure stands
            truth[plain] = (True, until, max(latest, now + 20.0)) if valid else (False, 0.0, now + 20.0)
        else:
            status = verifier.status(ip, GOOGLE, now)
            if status is VERIFIED:
                assert verified and now < until
            if now >= latest and plain not in unreported:
                assert status is UNKNOWN  # expired verdicts are never used
        if op in ("good", "bad", "fail"):
            unreported.discard(plain)
        assert len(verifier) <= 3 + 4
        assert verifier.pending <= 2


# --- operator-supplied address lists --------------------------------------------------------------


def test_google_json_ranges():
    ranges = load_crawler_ranges(FIXTURES / "googlebot.json")
    assert ranges.contains("66.249.66.5")
    assert ranges.contains("66.249.64.31")
    assert not ranges.contains("66.249.64.32")
    assert ranges.contains("2001:4860:4801:10::abcd")
    assert ranges.contains("::ffff:66.249.66.1")


def test_text_ranges_with_comments_and_blank_lines():
    ranges = load_crawler_ranges(FIXTURES / "duckduckbot.txt")
    assert ranges.contains("20.191.45.212")
    assert ranges.contains("40.88.21.235")
    assert ranges.contains("52.142.26.175")
    assert ranges.contains("2001:db8:dd:1::1")
    assert not ranges.contains("20.191.45.213")


def test_an_address_in_the_list_is_verified_without_dns():
    verifier = CrawlerVerifier(
        ranges={
            "google": load_crawler_ranges(FIXTURES / "googlebot.json"),
            "duckduckgo": load_crawler_ranges(FIXTURES / "duckduckbot.txt"),
        }
    )
    assert verifier.status("66.249.66.5", GOOGLE, 0.0) is VERIFIED
    assert verifier.status("::ffff:66.249.66.5", GOOGLE, 0.0) is VERIFIED
    assert verifier.status("66.249.66.5", BING, 0.0) is UNKNOWN  # Google's list says nothing of Bing
    assert verifier.status("20.191.45.212", DUCK, 0.0) is VERIFIED
    assert verifier.status("20.191.45.213", DUCK, 0.0) is FAILED
    assert verifier.status("66.249.66.200", GOOGLE, 0.0) is UNKNOWN  # not listed: DNS may still tell
    assert verifier.pending == 0
    assert len(verifier) == 0


def test_lists_for_unknown_crawlers_are_refused():
    with pytest.raises(ValueError, match="unknown crawlers: gogle"):
        CrawlerVerifier(ranges={"gogle": load_crawler_ranges(FIXTURES / "googlebot.json")})


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{\n  "prefixes": [\n    {"ipv4Prefix": "66.249.64.0/27"},\n  ]\n}', ":4: not valid JSON"),
        ('{"creationTime": "x"}', 'expected {"prefixes": [...]}'),
        ('{"prefixes": {"ipv4Prefix": "66.249.64.0/27"}}', 'expected {"prefixes": [...]}'),
        (
            '{"prefixes": [{"ipv4Prefix": "66.249.64.0/27"}, {"ipv4Prefix": "66.249.64.0/33"}]}',
            "prefixes[1]: expected",
        ),
        (
            '{"prefixes": [{"ipv4Prefix": "1.2.3.0/24", "ipv6Prefix": "2001:db8::/32"}]}',
            "prefixes[0]: expected",
        ),
        ('{"prefixes": [{"prefix": "1.2.3.0/24"}]}', "prefixes[0]: expected"),
        ('{"prefixes": [{"ipv4Prefix": 16909056}]}', "prefixes[0]: expected"),
        ('{"prefixes": []}', "no networks in the file"),
        ("# nothing yet\n\n", "no networks in the file"),
        ("192.0.2.0/24\n# fine\n192.0.2.0/40\n", ":3: not a network or address: '192.0.2.0/40'"),
        ("192.0.2.0/24\ncrawl.googlebot.com\n", ":2: not a network or address"),
    ],
)
def test_unusable_lists_are_reported_with_file_and_line(tmp_path, content, message):
    path = tmp_path / "ranges.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(DataFileError) as caught:
        load_crawler_ranges(path)
    assert str(caught.value).startswith(str(path))
    assert message in str(caught.value)


def test_unreadable_lists_are_reported(tmp_path):
    with pytest.raises(DataFileError, match=r"missing\.json: cannot read"):
        load_crawler_ranges(tmp_path / "missing.json")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe1.2.3.4\n")
    with pytest.raises(DataFileError, match="not UTF-8 text"):
        load_crawler_ranges(binary)
