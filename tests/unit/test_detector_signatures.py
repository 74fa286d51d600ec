"""The signature miner (detector.signatures) on the feature vectors of detector.features.

The traffic is synthetic but shaped like a real site's: a few hundred paths with Zipf-like popularity,
the header orders and user agents of the main browsers (and a few crawlers), cookies and referers on some
requests, several languages, thousands of client networks. Attack windows mix flood requests with the
legitimate traffic that goes on during the flood. Every generator is seeded.
"""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import accumulate

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shieldwall.detector.features import FEATURE_NAMES, Features, features_of, query_shape
from shieldwall.detector.signatures import (
    DEFAULT_CONFIG,
    DEFAULT_TTL,
    Miner,
    MinerConfig,
    Signature,
    SignatureSet,
    describe_conditions,
    match_any,
    mine,
    signature_id,
)
from shieldwall.net.client_identity import client_prefix
from shieldwall.policy.decision import RequestView
from shieldwall.policy.paths import normalise_path

# ---------------------------------------------------------------------------------------------------------
# Synthetic traffic


@dataclass(frozen=True)
class Client:
    """One kind of client software: its user agent, the header names it sends in order (volatile ones
    included, sent or not per request), and the languages its users have."""

    user_agent: bytes
    order: tuple[bytes, ...]
    languages: tuple[bytes, ...]


CHROME_ORDER = (
    b"host", b"connection", b"sec-ch-ua", b"sec-ch-ua-mobile", b"sec-ch-ua-platform",
    b"upgrade-insecure-requests", b"user-agent", b"accept", b"sec-fetch-site", b"sec-fetch-mode",
    b"sec-fetch-user", b"sec-fetch-dest", b"referer", b"accept-encoding", b"accept-language", b"cookie",
)  # fmt: skip
FIREFOX_ORDER = (
    b"host", b"user-agent", b"accept", b"accept-language", b"accept-encoding", b"referer", b"connection",
    b"cookie", b"upgrade-insecure-requests", b"sec-fetch-dest", b"sec-fetch-mode", b"sec-fetch-site",
    b"sec-fetch-user",
)  # fmt: skip
SAFARI_ORDER = (
    b"host", b"accept", b"sec-fetch-site", b"cookie", b"sec-fetch-dest", b"accept-language",
    b"sec-fetch-mode", b"user-agent", b"referer", b"accept-encoding", b"connection",
)  # fmt: skip
CRAWLER_ORDER = (b"host", b"connection", b"accept", b"from", b"user-agent", b"accept-encoding")
REQUESTS_ORDER = (b"host", b"user-agent", b"accept-encoding", b"accept", b"connection")

EUROPE = (b"en-US,en;q=0.9", b"de-DE,de;q=0.9,en;q=0.8", b"fr-FR,fr;q=0.9", b"nl-NL,nl;q=0.9", b"en-GB")
WEBKIT = b" AppleWebKit/537.36 (KHTML, like Gecko) Chrome/%s Safari/537.36"
WIN = b"Mozilla/5.0 (Windows NT 10.0; Win64; x64)" + WEBKIT
MAC = b"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)" + WEBKIT
IPHONE = (
    b"Mozilla/5.0 (iPhone; CPU iPhone OS %s like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    b"Version/17.4 Mobile/15E148 Safari/604.1"
)
CLIENTS: tuple[tuple[Client, float], ...] = (
    (Client(WIN % b"124.0.0.0", CHROME_ORDER, EUROPE), 22),
    (Client(WIN % b"123.0.0.0", CHROME_ORDER, EUROPE), 9),
    (Client(MAC % b"124.0.0.0", CHROME_ORDER, EUROPE), 8),
    (Client(WIN % b"124.0.0.0" + b" Edg/124.0.0.0", CHROME_ORDER, EUROPE), 6),
    (Client(b"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
            FIREFOX_ORDER, EUROPE), 7),
    (Client(b"Mozilla/5.0 (X11; Linux x86_64; rv:124.0) Gecko/20100101 Firefox/124.0", FIREFOX_ORDER,
            EUROPE), 2),
    (Client(IPHONE % b"17_4_1", SAFARI_ORDER, EUROPE), 16),
    (Client(IPHONE % b"17_3", SAFARI_ORDER, EUROPE), 6),
    (Client(b"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 "
            b"Mobile Safari/537.36", CHROME_ORDER, EUROPE), 14),
    (Client(b"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", CRAWLER_ORDER,
            ()), 1.5),
    (Client(b"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", CRAWLER_ORDER,
            ()), 0.5),
)  # fmt: skip
BROWSERS = [client for client, _ in CLIENTS if client.languages]

WORDS = [
    "election", "climate", "budget", "school", "health", "tax", "housing", "debate", "vote", "party",
    "candidate", "europe", "energy", "pension", "rail", "farmers", "water", "police", "jobs", "wages",
]  # fmt: skip
PATHS = (
    ["/", "/news", "/search", "/about", "/donate", "/login", "/events", "/contact", "/join", "/press"]
    + [f"/news/{word}-{n}" for n in range(8) for word in WORDS[:10]]
    + [f"/events/{n}" for n in range(30)]
    + [f"/img/{n}.jpg" for n in range(60)]
    + ["/static/app.3f9a1c.js", "/static/style.8c1e77.css", "/favicon.ico"]
)
PATH_WEIGHTS = list(accumulate(1 / (rank + 1) ** 0.9 for rank in range(len(PATHS))))  # cumulative


class Traffic:
    """A seeded source of legitimate requests."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        networks = random.Random(1)  # the same visitors' networks in every window
        self.addresses = [
            f"{networks.randrange(1, 224)}.{networks.randrange(256)}.{networks.randrange(256)}.{n % 250 + 1}"
            for n in range(4000)
        ] + [f"2001:db8:{networks.randrange(65536):x}:{n:x}::{n % 7 + 1}" for n in range(400)]
        self.address_weights = list(accumulate(1 / (rank + 1) ** 0.6 for rank in range(len(self.addresses))))

    def address(self) -> str:
        return self.rng.choices(self.addresses, cum_weights=self.address_weights)[0]

    def client(self) -> Client:
        return self.rng.choices([client for client, _ in CLIENTS], [weight for _, weight in CLIENTS])[0]

    def request(self) -> RequestView:
        rng = self.rng
        path = rng.choices(PATHS, cum_weights=PATH_WEIGHTS)[0]
        method = b"GET"
        if path in ("/login", "/donate") and rng.random() < 0.5:
            method = b"POST"
        elif rng.random() < 0.01:
            method = b"HEAD"
        return view(
            self.address(), method, path.encode(), self.query(path), self.client(),
            cookie=rng.random() < 0.6, referer=rng.random() < 0.7, host=b"donate.example.org"
            if path == "/donate" else b"www.example.org",
        )  # fmt: skip

    def query(self, path: str) -> bytes:
        rng = self.rng
        if path == "/search":
            query = "q=" + "+".join(rng.choices(WORDS, k=rng.choice((1, 1, 1, 2))))
            return (query + (f"&page={rng.randrange(1, 12)}" if rng.random() < 0.3 else "")).encode()
        if path == "/news" and rng.random() < 0.3:
            return f"page={rng.randrange(1, 40)}".encode()
        if path == "/" and rng.random() < 0.05:
            return b"utm_source=newsletter&utm_medium=email"
        return b""

    def sample(self, n: int) -> list[Features]:
        return [features_of(self.request()) for _ in range(n)]


def view(
    ip: str,
    method: bytes,
    path: bytes,
    query: bytes,
    client: Client,
    *,
    cookie: bool,
    referer: bool,
    host: bytes = b"www.example.org",
    order: tuple[bytes, ...] | None = None,
    language: bytes | None = None,
) -> RequestView:
    values = {
        b"host": host,
        b"user-agent": client.user_agent,
        b"accept-language": language if language is not None else (client.languages or (b"",))[0],
        b"referer": b"https://www.example.org/",
        b"cookie": b"session=abc",
    }
    headers = tuple(
        (name, values.get(name, b"x"))
        for name in (order or client.order)
        if (name != b"cookie" or cookie)
        and (name != b"referer" or referer)
        and (name != b"accept-language" or client.languages)
    )
    return RequestView(ip, client_prefix(ip), method, host, path, query, headers)


def random_ip(rng: random.Random) -> str:
    return f"{rng.randrange(1, 224)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def attack_window(
    flood: Callable[[random.Random], RequestView], *, seed: int, n: int = 5000, legit: float = 0.1
) -> tuple[list[Features], list[Features]]:
    """A sample of an attack window (flood and the legitimate traffic still coming) and, apart, the
    flood's own requests within it."""
    rng = random.Random(seed)
    traffic = Traffic(seed + 1)
    window: list[Features] = []
    flood_only: list[Features] = []
    for _ in range(n):
        if rng.random() < legit:
            window.append(features_of(traffic.request()))
        else:
            features = features_of(flood(rng))
            window.append(features)
            flood_only.append(features)
    return window, flood_only


def share(signatures: Sequence[Signature], sample: Sequence[Features]) -> float:
    """The share of a sample that any of the signatures matches."""
    return sum(match_any(signatures, features) is not None for features in sample) / len(sample)


@pytest.fixture(scope="module")
def baseline() -> list[Features]:
    return Traffic(7).sample(5000)


# ---------------------------------------------------------------------------------------------------------
# Floods


def bot_flood(rng: random.Random) -> RequestView:
    """python-requests hammering the home page from 2,000 addresses."""
    bot = Client(b"python-requests/2.31.0", REQUESTS_ORDER, ())
    return view(
        random_ip(random.Random(rng.randrange(2000))), b"GET", b"/", b"", bot, cookie=False, referer=False
    )


def cache_busting_flood(rng: random.Random) -> RequestView:
    """Real browsers' headers on /search with a random query, so that no cache can answer."""
    token = "".join(rng.choices(string.ascii_lowercase + string.digits, k=12))
    client = rng.choice(BROWSERS)
    return view(random_ip(rng), b"GET", b"/search", f"q={token}".encode(), client, cookie=False, referer=True)


def copied_headers_flood(rng: random.Random) -> RequestView:
    """A botnet sending real browsers' user agents and languages on the site's real paths, but its own
    fixed order of Chrome's header names (user-agent second)."""
    client = rng.choice(BROWSERS)
    order = (b"host", b"user-agent", *(n for n in CHROME_ORDER if n not in (b"host", b"user-agent")))
    path = rng.choices(PATHS, cum_weights=PATH_WEIGHTS)[0].encode()
    language = rng.choice(EUROPE)
    return view(
        random_ip(rng), b"GET", path, b"", client, cookie=True, referer=True, order=order, language=language
    )


OLD_CHROME = b"Mozilla/5.0 (Windows NT 6.1; WOW64)" + WEBKIT % b"49.0.2623.112"


def many_paths_flood(rng: random.Random) -> RequestView:
    """Every path of the site, evenly, from one (outdated) browser user agent with a browser's headers."""
    client = Client(OLD_CHROME, CHROME_ORDER, EUROPE)
    path = rng.choice(PATHS).encode()
    return view(
        random_ip(rng), b"GET", path, b"", client, cookie=rng.random() < 0.5, referer=rng.random() < 0.5
    )


# ---------------------------------------------------------------------------------------------------------
# Mining


def test_single_path_bot_flood_gives_one_blocking_signature(baseline: list[Features]) -> None:
    window, flood = attack_window(bot_flood, seed=11)
    signatures = mine(baseline, window, now=100.0, legit_share=0.1)
    assert len(signatures) == 1
    [signature] = signatures
    assert signature.action == "block"
    assert signature.collateral == 0.0
    assert share(signatures, flood) == 1.0
    assert dict(signature.conditions).keys() <= {"user_agent", "header_order"}
    assert signature.created == 100.0
    assert signature.expires == 100.0 + 120.0


@pytest.mark.parametrize("product_codes", [False, True])
def test_cache_busting_flood_is_caught_by_its_query_shape(
    baseline: list[Features], product_codes: bool
) -> None:
    """Random 12-character queries on /search from real browsers' headers. The query shape is all that
    tells them apart, and a signature on what is asked alone only challenges (see the flash crowd below).
    When some real searches also have that shape (product codes), the collateral says so."""
    if product_codes:
        rng = random.Random(5)
        codes = [view(random_ip(rng), b"GET", b"/search", f"q=ab{n:06d}x9".encode(), BROWSERS[0],
                      cookie=True, referer=True) for n in range(20)]  # fmt: skip
        baseline = baseline[:-20] + [features_of(code) for code in codes]  # 0.4 % of the baseline
    window, flood = attack_window(cache_busting_flood, seed=12)
    signatures = mine(baseline, window, now=0.0, legit_share=0.1)
    assert share(signatures, flood) >= 0.9
    assert share(signatures, baseline) <= 0.01
    main = signatures[0]
    assert dict(main.conditions)["query_shape"] == "q=alnum16"
    assert main.action == "challenge"
    assert (main.collateral > 0) is product_codes
    assert "random 'q' parameter" in main.describe()


def test_cache_busting_bot_is_blocked_by_its_user_agent(baseline: list[Features]) -> None:
    """The query shape and the user agent are equally clean: the signature naming the sender wins, and
    blocks."""

    def bot(rng: random.Random) -> RequestView:
        request = bot_flood(rng)
        token = "".join(rng.choices(string.ascii_lowercase, k=11)) + str(rng.randrange(10))  # "alnum16"
        return RequestView(request.client_ip, request.prefix, b"GET", request.host, b"/search",
                           f"q={token}".encode(), request.headers)  # fmt: skip

    window, flood = attack_window(bot, seed=25)
    signatures = mine(baseline, window, now=0.0, legit_share=0.1)
    assert [name for name, _ in signatures[0].conditions] == ["user_agent"]
    assert signatures[0].action == "block"
    assert share(signatures, flood) >= 0.9


def test_flash_crowd_on_a_new_page_is_never_blocked(baseline: list[Features]) -> None:
    """Viewers of a TV debate open the page it showed, with the QR code's tracking parameter: real
    browsers asking for something no baseline request asked for. At most a challenge."""
    traffic = Traffic(31)

    def viewer(rng: random.Random) -> RequestView:
        client = traffic.client()
        return view(traffic.address(), b"GET", b"/debate-2024", b"src=tv8k2m9q", client,
                    cookie=rng.random() < 0.3, referer=False)  # fmt: skip

    window, crowd = attack_window(viewer, seed=26)
    signatures = mine(baseline, window, now=0.0, legit_share=0.1)
    assert signatures and share(signatures, crowd) >= 0.9
    assert all(signature.action == "challenge" for signature in signatures)


def test_botnet_copying_browser_headers_is_caught_by_header_order(baseline: list[Features]) -> None:
    window, flood = attack_window(copied_headers_flood, seed=13)
    signatures = mine(baseline, window, now=0.0, legit_share=0.1)
    assert share(signatures, flood) >= 0.9
    assert share(signatures, baseline) == 0.0
    assert all(signature.action == "block" for signature in signatures)
    assert [list(dict(signature.conditions)) for signature in signatures] == [["header_order"]]


def test_flood_over_many_paths_is_caught_by_its_user_agent(baseline: list[Features]) -> None:
    window, flood = attack_window(many_paths_flood, seed=14)
    signatures = mine(baseline, window, now=0.0, legit_share=0.1)
    assert [signature.conditions for signature in signatures] == [(("user_agent", OLD_CHROME.decode()),)]
    assert signatures[0].action == "block"
    assert share(signatures, flood) == 1.0


def test_flood_that_looks_like_the_baseline_gives_no_signature(baseline: list[Features]) -> None:
    """A flash crowd, or a flood indistinguishable from it: nothing to block, nothing to propose."""
    window = Traffic(99).sample(5000)
    assert mine(baseline, window, now=0.0) == []
    assert mine(baseline, window, now=0.0, legit_share=0.5) == []


def test_never_blocks_what_the_baseline_is_made_of(baseline: list[Features]) -> None:
    """The flood is the site's most common request (Chrome on the home page): whatever is proposed only
    challenges, and leaves most visitors alone."""

    def chrome_home(rng: random.Random) -> RequestView:
        return view(random_ip(rng), b"GET", b"/", b"", CLIENTS[0][0], cookie=True, referer=True)

    window, _ = attack_window(chrome_home, seed=15)
    signatures = mine(baseline, window, now=0.0)
    assert signatures and all(signature.action == "challenge" for signature in signatures)
    assert all(0.0 < signature.collateral <= DEFAULT_CONFIG.max_collateral for signature in signatures)
    strict = MinerConfig(max_collateral=min(signature.collateral for signature in signatures) / 2)
    assert mine(baseline, window, now=0.0, config=strict) == []


def test_same_attack_sampled_twice_gives_the_same_ids(baseline: list[Features]) -> None:
    first, _ = attack_window(cache_busting_flood, seed=21)
    second, _ = attack_window(cache_busting_flood, seed=22)
    ids = [signature.id for signature in mine(baseline, first, now=0.0, legit_share=0.1)]
    assert ids == [signature.id for signature in mine(baseline, first, now=50.0, legit_share=0.1)]
    assert ids == [signature.id for signature in mine(list(baseline), second, now=0.0, legit_share=0.1)]
    assert all(identifier.startswith("sig-") and len(identifier) == 14 for identifier in ids)


def test_samples_over_the_limit_are_cut_evenly(baseline: list[Features]) -> None:
    window, flood = attack_window(bot_flood, seed=16, n=12_000)
    signatures = mine(baseline * 3, window, now=0.0, config=MinerConfig(max_sample=2000))
    assert len(signatures) == 1
    assert share(signatures, flood) == 1.0


def test_without_a_baseline_nothing_is_proposed() -> None:
    window, _ = attack_window(bot_flood, seed=17, n=500)
    assert mine([], window, now=0.0) == []
    assert mine(Traffic(3).sample(100), [], now=0.0) == []


def test_small_baseline_never_blocks() -> None:
    """Zero matches among 500 baseline requests do not show a share under 0.1 %: challenge only."""
    window, _ = attack_window(bot_flood, seed=18, n=1000)
    [signature] = mine(Traffic(3).sample(500), window, now=0.0)
    assert signature.collateral == 0.0
    assert signature.action == "challenge"


class TickingClock:
    """Each reading is one second later than the last: a slice of N seconds allows N readings."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        self.now += 1.0
        return self.now

    def wall(self) -> float:
        return self.now


def test_stepwise_mining_finds_what_one_run_finds(baseline: list[Features]) -> None:
    window, _ = attack_window(cache_busting_flood, seed=19)
    whole = Miner(baseline, window)
    whole.run()
    sliced = Miner(baseline, window)
    clock = TickingClock()
    slices = 1
    while not sliced.step(clock, 3.0):
        slices += 1
    assert slices > 3
    assert sliced.done and sliced.evaluations == whole.evaluations
    assert sliced.result(0.0, 60.0) == whole.result(0.0, 60.0)
    assert mine(
        baseline, window, now=0.0, ttl=60.0, clock=TickingClock(), time_budget=1000.0
    ) == whole.result(0.0, 60.0)


def test_miner_keeps_its_own_copy_of_the_samples(baseline: list[Features]) -> None:
    window, _ = attack_window(bot_flood, seed=27, n=1000)
    expected = mine(baseline, window, now=0.0)
    reservoir = list(window)
    miner = Miner(baseline, reservoir)
    reservoir[:] = baseline[:1000]  # the caller's reservoir moves on while the run is sliced
    miner.run()
    assert miner.result(0.0, DEFAULT_TTL) == expected


def test_time_budget_ends_the_search_with_the_best_so_far(baseline: list[Features]) -> None:
    """A slice of 8 readings: one per feature, so every single condition is evaluated, and no pair."""
    window, _ = attack_window(copied_headers_flood, seed=20)
    miner = Miner(baseline, window)
    assert miner.step(TickingClock(), len(FEATURE_NAMES)) is False
    assert not miner.done
    assert miner.evaluations < 100
    [signature] = miner.result(0.0, 60.0)
    assert [name for name, _ in signature.conditions] == ["header_order"]
    assert signature.action == "block"


def test_evaluation_budget_bounds_the_work(baseline: list[Features]) -> None:
    window, _ = attack_window(copied_headers_flood, seed=23)
    unbounded = Miner(baseline, window)
    unbounded.run()
    bounded = Miner(baseline, window, config=MinerConfig(max_evaluations=unbounded.evaluations // 2))
    bounded.run()
    assert bounded.evaluations <= unbounded.evaluations // 2 < unbounded.evaluations
    narrow = Miner(baseline, window, config=MinerConfig(beam=2))
    narrow.run()
    assert narrow.evaluations < unbounded.evaluations // 2


def test_one_feature_signatures_only_with_max_features_1(baseline: list[Features]) -> None:
    window, _ = attack_window(cache_busting_flood, seed=24)
    signatures = mine(baseline, window, now=0.0, config=MinerConfig(max_features=1))
    assert signatures and all(len(signature.conditions) == 1 for signature in signatures)


def test_a_condition_is_added_only_where_it_spares_the_baseline() -> None:
    """Attack: POST /login from one UA that real visitors also use for GET /login. Neither the path nor
    the UA alone is clean; together they are."""
    ua = "Mozilla/5.0 Firefox/125.0"

    def features(method: str, path: str, user_agent: str, n: int) -> Features:
        return Features(method, "a.example", path, "", user_agent, "h", "en", f"10.0.{n % 200}.0/24")

    baseline = [features("GET", "/login", ua, n) for n in range(2000)]
    baseline += [features("POST", "/login", "Mozilla/5.0 Chrome/124", n) for n in range(2000)]
    baseline += [features("GET", f"/p{n % 50}", "Mozilla/5.0 Chrome/124", n) for n in range(4000)]
    attack = [features("POST", "/login", ua, n) for n in range(3000)]
    [signature] = mine(baseline, attack, now=0.0)
    assert dict(signature.conditions) == {"method": "POST", "user_agent": ua}
    assert signature.action == "block"
    assert signature.coverage == 1.0


def test_more_general_signature_wins_a_tie() -> None:
    """Host and path are equally clean here: the signature has one condition, the first feature's."""
    baseline = [Features("GET", "a", "/", "", "ua", "h", "", f"10.0.{n % 200}.0/24") for n in range(4000)]
    attack = [Features("GET", "b", "/x", "", "ua", "h", "", f"10.1.{n % 200}.0/24") for n in range(1000)]
    [signature] = mine(baseline, attack, now=0.0)
    assert signature.conditions == (("host", "b"),)


def test_greedy_takes_the_best_remaining_gain() -> None:
    """/x covers most; after it, UA "a" adds 60 requests and UA "b" 340: "b" is next, and with it 94 % of
    the attack is covered, so "a" is never proposed."""

    def features(path: str, user_agent: str, n: int, net: int) -> Features:
        return Features("GET", "h", path, "", user_agent, "o", "en", f"10.{net}.{n % 200}.0/24")

    groups = [("/x", "a", 500), ("/y", "a", 60), ("/x", "b", 100), ("/z", "b", 170), ("/w", "b", 170)]
    attack = [features(path, ua, n, 1) for path, ua, size in groups for n in range(size)]
    baseline = [features(f"/p{n % 40}", f"ua{n % 30}", n, 0) for n in range(4000)]
    signatures = mine(baseline, attack, now=0.0)
    assert [signature.conditions for signature in signatures] == [(("path", "/x"),), (("user_agent", "b"),)]
    assert [signature.coverage for signature in signatures] == [0.6, 0.44]


_VALUES = st.sampled_from(["a", "b", "c"])
_FEATURES = st.builds(Features, *[_VALUES for _ in FEATURE_NAMES])


@settings(max_examples=60, deadline=None)
@given(st.lists(_FEATURES, min_size=1, max_size=60), st.lists(_FEATURES, min_size=1, max_size=60))
def test_reported_figures_are_what_the_signature_matches(
    baseline: list[Features], attack: list[Features]
) -> None:
    config = MinerConfig(block_collateral=0.05, min_support=0.05)
    signatures = mine(baseline, attack, now=0.0, config=config)
    assert len({signature.id for signature in signatures}) == len(signatures) <= config.max_signatures
    for signature in signatures:
        assert 1 <= len(signature.conditions) <= config.max_features
        assert signature.coverage == sum(map(signature.matches, attack)) / len(attack)
        assert signature.collateral == sum(map(signature.matches, baseline)) / len(baseline)
        assert signature.collateral <= config.max_collateral
        assert signature.coverage > config.collateral_weight * signature.collateral
        sender = {"user_agent", "header_order", "accept_language", "prefix"} & dict(
            signature.conditions
        ).keys()
        blockable = signature.collateral <= config.block_collateral and len(baseline) >= 60 and bool(sender)
        assert signature.action == ("block" if blockable else "challenge")
    assert mine(baseline, attack, now=0.0, config=config) == signatures


def test_config_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="max_features"):
        MinerConfig(max_features=len(FEATURE_NAMES) + 1)
    with pytest.raises(ValueError, match="within 0 to 1"):
        MinerConfig(max_collateral=1.5)
    with pytest.raises(ValueError, match="legit_share"):
        Miner([], [], legit_share=1.5)


# ---------------------------------------------------------------------------------------------------------
# Signatures and the set of active ones


def signature(*conditions: tuple[str, str], action: str = "block", now: float = 0.0) -> Signature:
    return Signature(conditions, 0.9, 0.0, "block" if action == "block" else "challenge", now, now + 120.0)


def test_signature_conditions_are_canonical_and_id_depends_on_them_only() -> None:
    a = signature(("user_agent", "curl/8"), ("path", "/"))
    b = Signature((("path", "/"), ("user_agent", "curl/8")), 0.5, 0.01, "challenge", 7.0, 8.0)
    assert a.conditions == (("path", "/"), ("user_agent", "curl/8"))
    assert a.id == b.id == signature_id(a.conditions)
    assert a.id != signature(("path", "/"), ("user_agent", "curl/9")).id
    # The length prefix keeps values from running into each other.
    assert signature_id([("path", "/a"), ("user_agent", "b")]) != signature_id(
        [("path", "/a1:b"), ("user_agent", "")]
    )
    with pytest.raises(ValueError, match="distinct features"):
        signature(("path", "/"), ("path", "/x"))
    with pytest.raises(ValueError, match="distinct features"):
        signature(("colour", "red"))
    with pytest.raises(ValueError, match="distinct features"):
        signature()


def test_signature_matches_all_its_conditions() -> None:
    rule = signature(("method", "GET"), ("path", "/search"))
    hit = Features("GET", "h", "/search", "q=alpha8", "ua", "x", "en", "10.0.0.0/24")
    assert rule.matches(hit)
    assert not rule.matches(Features("POST", "h", "/search", "q=alpha8", "ua", "x", "en", "10.0.0.0/24"))
    assert not rule.matches(Features("GET", "h", "/searc", "q=alpha8", "ua", "x", "en", "10.0.0.0/24"))


def test_refresh_only_extends() -> None:
    rule = signature(("path", "/"), now=10.0)
    assert rule.refresh(20.0, 120.0).expires == 140.0
    assert rule.refresh(0.0, 5.0).expires == 130.0


def test_match_any_prefers_block() -> None:
    challenge = signature(("path", "/"), action="challenge")
    block = signature(("method", "GET"))
    request = Features("GET", "h", "/", "", "ua", "x", "en", "10.0.0.0/24")
    assert match_any([challenge, block], request) is block
    assert match_any([challenge], request) is challenge
    assert match_any([block], Features("POST", "h", "/x", "", "ua", "x", "en", "10.0.0.0/24")) is None


@pytest.mark.parametrize(
    ("conditions", "words"),
    [
        (
            {
                "method": "GET",
                "path": "/search",
                "query_shape": "q=alnum16",
                "user_agent": "python-requests/2.31",
            },
            "GET /search with a random 'q' parameter from user agent 'python-requests/2.31'",
        ),
        ({"path": "/", "query_shape": ""}, "requests to / without a query string"),
        ({"method": "POST"}, "POST requests"),
        ({"host": "donate.example.org"}, "requests to host donate.example.org"),
        ({"host": "a.example", "path": "/x", "method": "GET"}, "GET a.example/x"),
        ({"user_agent": ""}, "requests without a user agent"),
        (
            {"prefix": "203.0.113.0/24", "accept_language": ""},
            "requests from network 203.0.113.0/24 without Accept-Language",
        ),
        ({"header_order": "9f2c01ab+c"}, "requests with header-order fingerprint 9f2c01ab+c"),
        (
            {"query_shape": "page=num1&q=alpha8", "accept_language": "en-us"},
            "requests with a numeric 'page' parameter and a text 'q' parameter with Accept-Language 'en-us'",
        ),
        ({"query_shape": "~hex16=empty&v"}, "requests with a random-looking parameter name and a bare 'v'"),
        ({"query_shape": "a=empty&+more"}, "requests with an empty 'a' parameter and more parameters"),
    ],
)
def test_describe(conditions: dict[str, str], words: str) -> None:
    assert describe_conditions(conditions) == words


def test_signature_set_refreshes_matching_and_expires_the_rest() -> None:
    rules = SignatureSet(ttl=60.0)
    a, b = signature(("path", "/a")), signature(("path", "/b"))
    added = rules.propose([a, b], now=100.0)
    assert [(rule.id, rule.created, rule.expires) for rule in added] == [
        (a.id, 100.0, 160.0),
        (b.id, 100.0, 160.0),
    ]
    rules.report_matches({a.id: 12, b.id: 0, "sig-unknown": 5}, now=150.0)
    assert rules.expire(159.0) == []
    gone = rules.expire(160.0)
    assert [rule.id for rule in gone] == [b.id]
    assert [rule.id for rule in rules.active] == [a.id]
    assert rules.expire(209.9) == []
    assert [rule.id for rule in rules.expire(210.0)] == [a.id]
    assert len(rules.active) == 0


def test_signature_set_re_proposal_keeps_creation_and_takes_new_figures() -> None:
    rules = SignatureSet(ttl=60.0)
    first = signature(("path", "/a"))
    rules.propose([first], now=0.0)
    again = Signature(first.conditions, 0.5, 0.004, "challenge", 30.0, 0.0)
    assert rules.propose([again], now=30.0) == []
    current = rules.get(first.id)
    assert current is not None
    assert (current.created, current.expires, current.action, current.collateral) == (
        0.0,
        90.0,
        "challenge",
        0.004,
    )


def test_signature_set_pin_outlives_ttl_and_incident() -> None:
    rules = SignatureSet(ttl=10.0)
    pinned, other = signature(("path", "/a")), signature(("path", "/b"))
    rules.propose([pinned, other], now=0.0)
    assert rules.pin(pinned.id) and rules.is_pinned(pinned.id)
    assert not rules.pin("sig-0000000000")
    assert [rule.id for rule in rules.expire(1000.0)] == [other.id]
    assert rules.end_incident() == []
    assert [rule.id for rule in rules.active] == [pinned.id]
    assert rules.unpin(pinned.id, now=1000.0)
    assert not rules.unpin(pinned.id, now=1000.0)
    assert rules.expire(1009.0) == []
    assert [rule.id for rule in rules.expire(1010.0)] == [pinned.id]


def test_signature_set_rejected_never_comes_back_during_the_incident() -> None:
    rules = SignatureSet()
    rejected, kept = signature(("path", "/a")), signature(("path", "/b"))
    rules.propose([rejected, kept], now=0.0)
    assert rules.reject(rejected.id) is not None
    assert rules.propose([rejected], now=5.0) == []
    assert rules.get(rejected.id) is None and rules.is_rejected(rejected.id)
    assert rules.reject("sig-0123456789") is None  # an id seen in the log, already gone: still refused
    assert rules.propose([signature(("path", "/a"))], now=6.0) == []
    assert [rule.id for rule in rules.end_incident()] == [kept.id]
    assert not rules.is_rejected(rejected.id)
    assert [rule.id for rule in rules.propose([rejected], now=100.0)] == [rejected.id]


def test_signature_set_is_bounded() -> None:
    rules = SignatureSet(max_active=2)
    proposed = [signature(("path", f"/{n}")) for n in range(3)]
    assert len(rules.propose(proposed, now=0.0)) == 2
    assert len(rules.active) == 2


# ---------------------------------------------------------------------------------------------------------
# Features


CHROME = CLIENTS[0][0]


@pytest.mark.parametrize(
    ("query", "shape"),
    [
        (b"", ""),
        (b"q=shoes&page=2", "page=num1&q=alpha8"),
        (b"q=k3j9x0aq2mz1", "q=alnum16"),
        (b"q=red+shoes", "q=other16"),
        (b"_=1712345678901", "_=num16"),
        (b"v=deadbeef00", "v=hex16"),
        (b"v=cafe", "v=alpha4"),  # too short to call hex
        (b"a=&b", "a=empty&b"),
        (b"8f3a9c01d2e4b5a6", "~hex16"),
        (b"x7k2m9q1=1", "~alnum8=num1"),
        (b"item2=1&filter[color]=red&utm_source=mail", "filter[color]=alpha4&item2=num1&utm_source=alpha4"),
        (b"a=1&" * 20, "&".join(["a=num1"] * 16) + "&+more"),
    ],
)
def test_query_shape(query: bytes, shape: str) -> None:
    assert query_shape(query) == shape


def test_features_of_a_browser_request() -> None:
    request = view("203.0.113.9", b"GET", b"/news//x/../search", b"q=vote", CHROME, cookie=True, referer=True)
    features = features_of(request)
    assert features == Features(
        method="GET",
        host="www.example.org",
        path="/news/search",
        query_shape="q=alpha4",
        user_agent=CHROME.user_agent.decode(),
        header_order=features.header_order,
        accept_language="en-us",
        prefix="203.0.113.0/24",
    )
    assert features.path == normalise_path(b"/news//x/../search").decode()
    assert len(features.header_order) == len("12345678+cr") and features.header_order.endswith("+cr")


def test_header_order_ignores_volatile_headers_but_flags_them() -> None:
    def order(client: Client, cookie: bool, referer: bool) -> str:
        return features_of(
            view("10.0.0.1", b"GET", b"/", b"", client, cookie=cookie, referer=referer)
        ).header_order

    bare = order(CHROME, False, False)
    assert order(CHROME, True, False) == bare + "+c"
    assert order(CHROME, True, True) == bare + "+cr"
    assert order(CHROME, False, True) == bare + "+r"
    firefox = CLIENTS[4][0]
    assert order(firefox, False, False) != bare
    # Copying Chrome's user agent does not copy its order.
    requests_like = Client(CHROME.user_agent, REQUESTS_ORDER, ())
    assert order(requests_like, False, False) != bare
    # Same names, another order: another fingerprint.
    swapped = Client(CHROME.user_agent, (CHROME.order[1], CHROME.order[0], *CHROME.order[2:]), EUROPE)
    assert order(swapped, False, False) != bare


def test_features_of_a_bare_request() -> None:
    features = features_of(RequestView("2001:db8::1", "2001:db8::/64", b"GET", b"h", b"/", b"", ()))
    assert (features.user_agent, features.accept_language, features.query_shape) == ("", "", "")
    assert features.prefix == "2001:db8::/64"
    assert len(features.header_order) == 8


def test_features_are_bounded() -> None:
    long = RequestView(
        "10.0.0.1", "10.0.0.0/24", b"GET", b"h", b"/" + b"a" * 1000, b"",
        ((b"user-agent", b"U" * 1000), (b"accept-language", b"EN-us-x-" + b"z" * 100 + b";q=1")),
    )  # fmt: skip
    features = features_of(long)
    assert len(features.path) == 256
    assert features.user_agent == "U" * 128
    assert features.accept_language == "en-us-x-zzzzzzzz"


def test_features_use_the_first_user_agent_and_language() -> None:
    request = RequestView(
        "10.0.0.1", "10.0.0.0/24", b"GET", b"h", b"/", b"",
        ((b"user-agent", b"first"), (b"user-agent", b"second"), (b"accept-language", b" de , en"),
         (b"accept-language", b"fr")),
    )  # fmt: skip
    features = features_of(request)
    assert (features.user_agent, features.accept_language) == ("first", "de")


def test_non_ascii_bytes_survive() -> None:
    request = RequestView(
        "10.0.0.1", "10.0.0.0/24", b"GET", b"h", b"/caf\xc3\xa9", b"", ((b"user-agent", b"\xff"),)
    )
    features = features_of(request)
    assert features.path.encode("latin-1") == b"/caf\xc3\xa9"
    assert features.user_agent == "\xff"
