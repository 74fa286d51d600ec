"""Verified good crawlers, sans-io: whether a client whose User-Agent names a search engine's crawler
really is that crawler, so that it can pass where a browser would be challenged.

DNS is I/O, so it is not done here. The data plane drives a `CrawlerVerifier` like this:

    crawler = claimed_crawler(user_agent)              # per request on challenged routes; cheap
    if crawler is not None:
        status = verifier.status(ip, crawler, now)     # VERIFIED, FAILED, or UNKNOWN: nothing known yet
        if status is CrawlerStatus.UNKNOWN and verifier.begin(ip, crawler, now):
            # in the background, within verifier.lookup_timeout seconds:
            #   names = verifier.names_to_resolve(<PTR names of ip>)
            #   verifier.complete(ip, {name: <A and AAAA addresses of name> for name in names}, now)
            # and on a timeout or a resolver error (not NXDOMAIN: that is an answer): verifier.fail(ip, now)

`begin` is False when a lookup for the address is already under way or `max_pending` are: a flood of
forged "Googlebot" User-Agents from many addresses costs at most that many lookups at a time, and each
address that failed is not looked up again for `failed_ttl` (or `error_ttl` after a timeout).

Verified and failed addresses are kept in two bounded tables, each evicting its least recently used
entry: a flood of failures can never push out a verified crawler. An address inside the address list
the operator supplied for the crawler (`load_crawler_ranges`) is verified without any DNS.
"""

from __future__ import annotations

import json
import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from enum import Enum
from pathlib import Path
from typing import Final, TypeVar

from shieldwall.net.client_identity import normalise_ip
from shieldwall.net.crawler_list import CRAWLERS, Crawler
from shieldwall.net.ipdata import DataFileError
from shieldwall.net.networks import NetworkSet, parse_network

_MAX_NAMES: Final = 4  # PTR names worth a forward lookup, per address: real crawlers have one
_JSON_KEYS: Final = ("ipv4Prefix", "ipv6Prefix")
_V = TypeVar("_V")


class CrawlerStatus(Enum):
    VERIFIED = "verified"
    FAILED = "failed"  # not this crawler, or it cannot be told (no DNS and no list for it)
    UNKNOWN = "unknown"  # nothing known yet: start a lookup (see CrawlerVerifier.begin)


# A crawler's User-Agent is short (Googlebot's longest is under 300 bytes); a longer one is not
# looked at, which bounds what a forged header can cost here.
_MAX_USER_AGENT: Final = 512
# One search for every crawler's hints at once. `timeit`, Python 3.11, the 2-core dev machine:
# 0.56 µs for a desktop Chrome User-Agent, 1.3 µs for Googlebot's. Testing `needle in user_agent`
# one by one costs 0.16-0.2 µs a needle (1.8 µs for the five that cover every token), one regex of
# every full token 0.8 µs. Worst cases, within the 512 bytes: 15 µs for "A" * 512, 28 µs for
# "Google" * 85 (all hints, no token); unbounded, the 32 kB head limit would allow 0.8 ms.
_HINTS: Final = re.compile(b"|".join(re.escape(hint) for crawler in CRAWLERS for hint in crawler.hints))
_BY_HINT: Final = {hint: crawler for crawler in CRAWLERS for hint in crawler.hints}


def claimed_crawler(user_agent: bytes) -> Crawler | None:
    """The crawler whose product token the User-Agent carries, or None. A claim, not a proof: anyone
    can send it, and it only decides which crawler to verify the address against.

    Per request on challenged routes, so a browser's User-Agent costs one search for literal hints.
    Only the crawlers whose hints are found have their tokens compared, each at most once (a Yandex
    app's "YandexSearch" has a hint and no token)."""
    if len(user_agent) > _MAX_USER_AGENT:
        return None
    hit = _HINTS.search(user_agent)
    if hit is None:
        return None
    tried: list[Crawler] = []
    while hit is not None:
        crawler = _BY_HINT[hit.group()]
        if crawler not in tried:
            if _carries(user_agent, crawler):
                return crawler
            tried.append(crawler)
        hit = _HINTS.search(user_agent, hit.end())
    return None


def _carries(user_agent: bytes, crawler: Crawler) -> bool:
    for token in crawler.tokens:  # noqa: SIM110 (a loop, not any(): no generator per request)
        if token in user_agent:
            return True
    return False


def load_crawler_ranges(path: str | Path) -> NetworkSet:
    """A crawler's addresses from a file the operator downloaded from its search engine: the JSON that
    Google, Bing and Apple publish (`{"prefixes": [{"ipv4Prefix": "66.249.64.0/27"}, {"ipv6Prefix":
    ...}]}`), or plain text, one CIDR or address a line, `#` comments and blank lines allowed.
    Raises DataFileError naming the file (and the line, for text and JSON syntax)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise DataFileError(path, None, f"cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise DataFileError(path, None, "not UTF-8 text") from None
    cidrs = _json_prefixes(path, text) if text.lstrip().startswith("{") else _text_lines(path, text)
    if not cidrs:
        raise DataFileError(path, None, "no networks in the file")
    return NetworkSet(cidrs)


def _json_prefixes(path: str | Path, text: str) -> list[str]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataFileError(path, exc.lineno, f"not valid JSON: {exc.msg}") from None
    prefixes = document.get("prefixes") if isinstance(document, dict) else None
    if not isinstance(prefixes, list):
        raise DataFileError(path, None, 'expected {"prefixes": [...]} as Google, Bing and Apple publish')
    cidrs = []
    for index, item in enumerate(prefixes):
        values = [item[key] for key in _JSON_KEYS if key in item] if isinstance(item, dict) else []
        if len(values) != 1 or not isinstance(values[0], str) or not _is_network(values[0]):
            raise DataFileError(
                path, None, f"prefixes[{index}]: expected one ipv4Prefix or ipv6Prefix network"
            )
        cidrs.append(values[0])
    return cidrs


def _text_lines(path: str | Path, text: str) -> list[str]:
    cidrs = []
    for number, line in enumerate(text.splitlines(), 1):
        entry = line.partition("#")[0].strip()
        if not entry:
            continue
        if not _is_network(entry):
            raise DataFileError(path, number, f"not a network or address: {entry[:60]!r}")
        cidrs.append(entry)
    return cidrs


def _is_network(text: str) -> bool:
    try:
        parse_network(text)
    except ValueError:
        return False
    return True


class CrawlerVerifier:
    """Forward-confirmed reverse DNS results per address, with TTLs, bounded; see the module doc.

    Times are `now` arguments in seconds (monotonic). Addresses are normalised, so ::ffff:66.249.66.1
    and 66.249.66.1 are one entry. The verdict for an address covers every crawler at once: its
    confirmed names say which crawlers it belongs to, whichever one it claimed when it was looked up.
    """

    def __init__(
        self,
        *,
        ranges: Mapping[str, NetworkSet] | None = None,
        dns: bool = True,
        verified_ttl: float = 86400.0,
        failed_ttl: float = 3600.0,
        error_ttl: float = 300.0,
        lookup_timeout: float = 5.0,
        max_verified: int = 4096,
        max_failed: int = 16384,
        max_pending: int = 32,
    ) -> None:
        unknown = sorted(set(ranges or {}) - {crawler.name for crawler in CRAWLERS})
        if unknown:
            raise ValueError(f"address lists for unknown crawlers: {', '.join(unknown)}")
        if min(max_verified, max_failed, max_pending) < 1:
            raise ValueError("the table sizes must be at least 1")
        self.dns = dns
        self.verified_ttl = verified_ttl
        self.failed_ttl = failed_ttl
        self.error_ttl = error_ttl
        self.lookup_timeout = lookup_timeout
        self.max_verified = max_verified
        self.max_failed = max_failed
        self.max_pending = max_pending
        self._ranges = dict(ranges or {})
        # A PTR name belongs to a crawler when it is one of its domains or ends with "." + one of
        # them: on a label boundary, so evilgooglebot.com is not googlebot.com.
        self._domains = {crawler.name: crawler.dns_domains for crawler in CRAWLERS}
        self._subdomains = {crawler.name: tuple("." + d for d in crawler.dns_domains) for crawler in CRAWLERS}
        self._verified: OrderedDict[str, tuple[float, frozenset[str]]] = OrderedDict()  # expiry, crawlers
        self._failed: OrderedDict[str, float] = OrderedDict()  # expiry
        self._pending: dict[str, float] = {}  # address -> when its lookup is given up

    def __len__(self) -> int:
        """Addresses with a remembered verdict (some possibly expired, dropped when next asked)."""
        return len(self._verified) + len(self._failed)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def status(self, ip: str, crawler: Crawler, now: float) -> CrawlerStatus:
        """Whether `ip` is `crawler`: from its address list, else from a remembered lookup. FAILED for
        text that is not an address, and for a crawler that only an address list could verify."""
        try:
            key = normalise_ip(ip)
        except ValueError:
            return CrawlerStatus.FAILED
        listed = self._ranges.get(crawler.name)
        if listed is not None and listed.contains(key):
            return CrawlerStatus.VERIFIED
        if not self.dns or not crawler.dns_domains:
            return CrawlerStatus.FAILED
        entry = self._verified.get(key)
        if entry is not None:
            expires, owners = entry
            if now < expires:
                self._verified.move_to_end(key)
                return CrawlerStatus.VERIFIED if crawler.name in owners else CrawlerStatus.FAILED
            del self._verified[key]
        failed_until = self._failed.get(key)
        if failed_until is not None:
            if now < failed_until:
                self._failed.move_to_end(key)
                return CrawlerStatus.FAILED
            del self._failed[key]
        return CrawlerStatus.UNKNOWN

    def begin(self, ip: str, crawler: Crawler, now: float) -> bool:
        """Whether the caller should start a lookup for `ip` now; if so, one of `max_pending` slots is
        held until `complete` or `fail`, or at most `lookup_timeout` seconds (a lookup never reported
        counts as failed). False when DNS cannot verify this crawler, when a lookup for `ip` is under
        way, and when `max_pending` lookups are."""
        try:
            key = normalise_ip(ip)
        except ValueError:
            return False
        if not self.dns or not crawler.dns_domains:
            return False
        deadline = self._pending.get(key)
        if deadline is not None:
            if now < deadline:
                return False
            del self._pending[key]  # overdue and never reported: this lookup replaces it
        if len(self._pending) >= self.max_pending:
            self._give_up_overdue(now)
            if len(self._pending) >= self.max_pending:
                return False
        self._pending[key] = now + self.lookup_timeout
        return True

    def names_to_resolve(self, ptr_names: Iterable[str]) -> list[str]:
        """The PTR names worth a forward lookup: those under some crawler's domains, lower-case,
        without the root dot, at most four. Names an attacker's own PTR records invent cost nothing."""
        wanted: list[str] = []
        for raw in ptr_names:
            name = _host(raw)
            if name not in wanted and self._owners(name):
                wanted.append(name)
                if len(wanted) == _MAX_NAMES:
                    break
        return wanted

    def complete(self, ip: str, resolved: Mapping[str, Iterable[str]], now: float) -> None:
        """Record a finished lookup: `resolved` maps each PTR name of `ip` (after `names_to_resolve`,
        or all of them) to the addresses its forward lookup gave; {} when the address has no PTR name.

        The address is verified for a crawler when one name lies under that crawler's domains AND
        that same name resolves back to the address. Remembered for `verified_ttl`, or, when no
        crawler is verified, as failed for `failed_ttl`."""
        try:
            key = normalise_ip(ip)
        except ValueError:
            return
        self._pending.pop(key, None)
        owners: set[str] = set()
        for name, addresses in resolved.items():
            claimants = self._owners(_host(name))
            if claimants and any(_same_address(key, address) for address in addresses):
                owners.update(claimants)
        if owners:
            self._failed.pop(key, None)
            _remember(self._verified, key, (now + self.verified_ttl, frozenset(owners)), self.max_verified)
        else:
            self._verified.pop(key, None)
            _remember(self._failed, key, now + self.failed_ttl, self.max_failed)

    def fail(self, ip: str, now: float) -> None:
        """Record a lookup that timed out or met a resolver error: failed for the shorter `error_ttl`,
        since the next try may succeed. A still-valid verification is kept."""
        try:
            key = normalise_ip(ip)
        except ValueError:
            return
        self._pending.pop(key, None)
        verified = self._verified.get(key)
        if verified is not None and now < verified[0]:
            return
        self._verified.pop(key, None)
        _remember(self._failed, key, now + self.error_ttl, self.max_failed)

    def _owners(self, name: str) -> tuple[str, ...]:
        """The crawlers under whose domains the (already lower-cased) host name lies."""
        return tuple(
            crawler
            for crawler, domains in self._domains.items()
            if name in domains or name.endswith(self._subdomains[crawler])
        )

    def _give_up_overdue(self, now: float) -> None:
        """Lookups past their deadline that were never reported count as errors. At most
        `max_pending` entries, and only looked at when a slot is wanted."""
        for key, deadline in list(self._pending.items()):
            if deadline <= now:
                self.fail(key, now)


def _host(name: str) -> str:
    """A DNS name as compared: lower-case (DNS names are case-insensitive), without the root dot."""
    return name.lower().removesuffix(".")


def _same_address(key: str, address: str) -> bool:
    try:
        return normalise_ip(address) == key
    except ValueError:
        return False


def _remember(table: OrderedDict[str, _V], key: str, value: _V, limit: int) -> None:
    table[key] = value
    table.move_to_end(key)
    while len(table) > limit:
        table.popitem(last=False)
