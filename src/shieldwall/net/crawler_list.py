"""The search engines' crawlers that shieldwall can verify, and how each one documents itself.

A crawler is known by a product token in its User-Agent, which anyone can copy; it is *verified* by
forward-confirmed reverse DNS (its address's PTR name lies under one of the domains its operator
documents, and that name resolves back to the address) or by the address lists the operator publishes
(loaded by `crawlers.load_crawler_ranges` from files the operator of shieldwall downloads).

The DNS domains below are the ones each search engine's own verification page names, and no wider:
- Google, https://developers.google.com/search/docs/crawling-indexing/verifying-googlebot
  ("Verify that the domain name is either googlebot.com or google.com"; the common crawlers are
  crawl-*.googlebot.com, the special-case ones rate-limited-proxy-*.google.com). The page also lists
  gae.googleusercontent.com for *user-triggered fetchers*; that domain is left out on purpose, because
  googleusercontent.com names Google Cloud customers' machines, so anyone renting one could pass.
- Bing, https://www.bing.com/webmaster/help/how-to-verify-bingbot-3905dc26 ("resolves to a name that
  end with search.msn.com").
- Apple, https://support.apple.com/en-gu/HT204683 ("reverse DNS shows it in the *.applebot.apple.com
  domain").
- Yandex, https://yandex.com/support/webmaster/robot-workings/check-yandex-robots.html ("All Yandex
  robot names end in yandex.ru, yandex.net or yandex.com").
- Baidu, its Baiduspider FAQ (www.baidu.com/search/spider_english.html, read as mirrored at
  http://sowang.com/bbs/forum.php?goto=lastpost&mod=redirect&tid=142376): "The hostname of Baiduspider
  is *.baidu.com or *.baidu.jp".
- DuckDuckGo documents no DNS names, only a list of addresses
  (https://duckduckgo.com/duckduckgo-help-pages/results/duckduckbot): DuckDuckBot is verified only
  when the operator supplies that list.

Each entry lists its product tokens, and shorter `hints` (one of which is part of every token) for the
per-request pre-check in `crawlers.claimed_crawler`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class Crawler:
    name: str  # the key of this crawler's address list in the config ("google")
    hints: tuple[bytes, ...]  # every token below contains one of these
    tokens: tuple[bytes, ...]  # product tokens its User-Agents carry ("Googlebot" in "Googlebot/2.1")
    dns_domains: tuple[str, ...]  # lower-case, no dots around; () when only address lists verify it


CRAWLERS: Final = (
    Crawler(
        "google",
        (b"Google",),
        # Googlebot-Image, GoogleOther-Video, AdsBot-Google-Mobile ... contain one of these.
        (
            b"Googlebot",
            b"Storebot-Google",
            b"Google-InspectionTool",
            b"GoogleOther",
            b"AdsBot-Google",
            b"Mediapartners-Google",
            b"APIs-Google",
        ),
        ("googlebot.com", "google.com"),
    ),
    Crawler(
        "bing",
        (b"bingbot", b"msnbot", b"AdIdxBot"),
        (b"bingbot", b"msnbot", b"AdIdxBot"),
        ("search.msn.com",),
    ),
    Crawler("apple", (b"Applebot",), (b"Applebot",), ("applebot.apple.com",)),
    Crawler(
        "yandex",
        (b"Yandex",),
        # The robots of Yandex's list that fetch pages; not bare "Yandex", which the User-Agents of
        # Yandex's apps for people carry too (YandexSearch/...).
        (
            b"YandexBot",
            b"YandexMobileBot",
            b"YandexImages",
            b"YandexVideo",
            b"YandexMedia",
            b"YandexAccessibilityBot",
            b"YandexRenderResourcesBot",
            b"YandexScreenshotBot",
            b"YandexFavicons",
        ),
        ("yandex.ru", "yandex.net", "yandex.com"),
    ),
    Crawler("baidu", (b"Baiduspider",), (b"Baiduspider",), ("baidu.com", "baidu.jp")),
    Crawler("duckduckgo", (b"DuckDuckBot",), (b"DuckDuckBot",), ()),
)
