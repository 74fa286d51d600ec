"""A scenario's synthetic traffic: `traffic.toml` (or `.json`) read into pools of clients, header sets,
request profiles and timed phases, and `Traffic.second(s)`, the requests of simulated second `s`.

Each request carries the `RequestHead` the data plane's parser would have made of it (the real
`http1.request.validate_request_head`, Host first, as a client sends it), so what the runner counts and
matches is built by the same code as in a worker. Everything random comes from one `random.Random(seed)`
drawn in a fixed order: the same file gives the same requests, second by second.

The format is described in README.md next to this file.
"""

from __future__ import annotations

import ipaddress
import math
import random
import re
import string
import zlib
from bisect import bisect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Generic, NamedTuple, TypeVar

from scenarios.documents import REQUIRED, ScenarioError, Table, read_document
from shieldwall.drill.visitors import browser_headers
from shieldwall.http1.request import RequestHead, validate_request_head
from shieldwall.net.client_identity import client_prefix

T = TypeVar("T")
Fields = tuple[tuple[bytes, bytes], ...]

MAX_CLIENTS: Final = 200_000  # per pool: memory stays small, and no scenario needs more
MAX_RATE: Final = 20_000.0  # requests/s per phase: every request is really generated and counted
_HEAD_CACHE: Final = 100_000  # heads of repeated requests kept (a random query makes every head new)
_BODY_METHODS: Final = frozenset({b"POST", b"PUT", b"PATCH"})

# Header sets by preset name, without Host (added first to every request). "chrome" is the drill's own
# Chrome 124 navigation (what its visitors send and its browser-mimic botnet copies); the others are
# Firefox 128 and Safari 17 navigations, in the orders those browsers send.
PRESETS: Final[dict[str, Callable[[], tuple[tuple[str, str], ...]]]] = {
    "chrome": lambda: browser_headers("document"),
    "firefox": lambda: (
        ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
        ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"),
        ("Accept-Language", "en-GB,en;q=0.5"),
        ("Accept-Encoding", "gzip, deflate, br, zstd"),
        ("Connection", "keep-alive"),
        ("Upgrade-Insecure-Requests", "1"),
        ("Sec-Fetch-Dest", "document"),
        ("Sec-Fetch-Mode", "navigate"),
        ("Sec-Fetch-Site", "none"),
        ("Sec-Fetch-User", "?1"),
        ("Priority", "u=0, i"),
    ),
    "safari": lambda: (
        ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
        ("Sec-Fetch-Site", "none"),
        ("Sec-Fetch-Dest", "document"),
        ("Accept-Language", "en-US,en;q=0.9"),
        ("Sec-Fetch-Mode", "navigate"),
        (
            "User-Agent",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
        ),
        ("Accept-Encoding", "gzip, deflate, br"),
        ("Connection", "keep-alive"),
    ),
}

_ALPHABETS: Final = {
    "alnum": string.ascii_letters + string.digits,
    "alpha": string.ascii_letters,
    "digits": string.digits,
    "hex": "0123456789abcdef",
}
_PLACEHOLDER: Final = re.compile(r"\{([a-z]+):([^}]*)\}")


class Weighted(Generic[T]):
    """Items drawn with probability proportional to their weights."""

    def __init__(self, items: Sequence[T], weights: Sequence[float]) -> None:
        self.items = tuple(items)
        self._cumulative: list[float] = []
        total = 0.0
        for weight in weights:
            total += weight
            self._cumulative.append(total)
        self._total = total

    def index(self, rng: random.Random) -> int:
        if len(self.items) == 1:
            return 0
        return min(bisect(self._cumulative, rng.random() * self._total), len(self.items) - 1)


class Client(NamedTuple):
    ip: str
    prefix: str  # its /24 or /64, as net.client_identity.client_prefix writes it
    worker: int  # the worker its connections land on (one prefix, one worker, as the reuseport BPF does)


@dataclass(frozen=True)
class Pool:
    name: str
    clients: tuple[Client, ...]
    solves_challenges: bool  # real browsers: a challenge once, then their clearance lets them through


class Query:
    """A query template: literal text with generators, e.g. "q={alnum:16}&page={digits:1}".

    {alnum:N} {alpha:N} {digits:N} {hex:N}: N random characters of that class;
    {word:a,b,c}: one of the listed words."""

    def __init__(self, template: str, where: str) -> None:
        self.parts: list[str | Callable[[random.Random], str]] = []
        self.fixed = True  # no random characters: few distinct queries, so their heads can be cached
        position = 0
        for match in _PLACEHOLDER.finditer(template):
            self.parts.append(template[position : match.start()])
            self.parts.append(self._generator(match.group(1), match.group(2), where))
            position = match.end()
        self.parts.append(template[position:])
        if "{" in "".join(part for part in self.parts if isinstance(part, str)):
            raise ScenarioError(f"{where}: unknown placeholder in {template!r}")

    def _generator(self, kind: str, argument: str, where: str) -> Callable[[random.Random], str]:
        if kind == "word":
            words = [word for word in argument.split(",") if word]
            if not words:
                raise ScenarioError(f"{where}: {{word:...}} needs words")
            return lambda rng: rng.choice(words)
        alphabet = _ALPHABETS.get(kind)
        if alphabet is None or not argument.isdigit() or not 1 <= int(argument) <= 256:
            raise ScenarioError(f"{where}: unknown placeholder {{{kind}:{argument}}}")
        length = int(argument)
        self.fixed = False
        return lambda rng: "".join(rng.choices(alphabet, k=length))

    def render(self, rng: random.Random) -> bytes:
        return "".join(part if isinstance(part, str) else part(rng) for part in self.parts).encode("latin-1")


@dataclass(frozen=True)
class Target:
    """One entry of a profile's `paths`: "POST /donate" or "/search" (GET)."""

    method: bytes
    path: bytes
    query: Query | None
    cost: float  # origin cost units of one request (1 by default)


@dataclass(frozen=True)
class OptionalHeader:
    name: bytes
    value: bytes
    share: float  # of this profile's requests that carry it


class Profile:
    """What one kind of client asks for, and with which headers."""

    def __init__(self, table: Table, header_sets: dict[str, Fields]) -> None:
        where = table.where
        paths = table.weights("paths", required=True)
        queries = table.strings_by_name("queries")
        costs = table.table("cost")
        targets = []
        for key in paths:
            method, _, path = key.rpartition(" ")
            if not path.startswith("/") or "?" in path:
                raise ScenarioError(f"{where}.paths: {key!r} must be a path, optionally after a method")
            template = queries.get(key)
            query = None if template is None else Query(template, f"{where}.queries.{key}")
            cost = costs.number(key, 1.0, minimum=0.0)
            targets.append(Target((method or "GET").encode(), path.encode(), query, cost))
        for name in (*queries, *costs.keys()):
            if name not in paths:
                raise ScenarioError(f"{where}: {name!r} has a query or cost but is not in paths")
        costs.done()
        self.targets = Weighted(targets, list(paths.values()))
        header_weights = table.weights("headers", required=True)
        for name in header_weights:
            if name not in header_sets:
                raise ScenarioError(f"{where}.headers: no header set named {name!r}")
        self.headers = Weighted([header_sets[name] for name in header_weights], list(header_weights.values()))
        languages = table.weights("languages")
        self.languages = (
            Weighted([language.encode() for language in languages], list(languages.values()))
            if languages
            else None
        )
        self.optional = []
        for item in table.tables("optional"):
            share = item.number("share", REQUIRED, minimum=0.0)
            if share > 1:
                raise ScenarioError(f"{item.where}.share: must be at most 1")
            header = OptionalHeader(
                item.text("name", REQUIRED).encode(), item.text("value", "").encode(), share
            )
            self.optional.append(header)
            item.done()
        self.body = table.integer("body", 64, minimum=0)
        table.done()

    def make(
        self, rng: random.Random, host: bytes, cache: dict[tuple[object, ...], RequestHead]
    ) -> tuple[RequestHead, float]:
        target = self.targets.items[self.targets.index(rng)]
        query = b"" if target.query is None else target.query.render(rng)
        header_set = self.headers.index(rng)
        language = -1 if self.languages is None else self.languages.index(rng)
        mask = 0
        for bit, header in enumerate(self.optional):
            if rng.random() < header.share:
                mask |= 1 << bit
        cacheable = target.query is None or target.query.fixed
        key = (target, query, header_set, language, mask)
        head = cache.get(key) if cacheable else None
        if head is None:
            head = self._head(target, query, header_set, language, mask, host)
            if cacheable:
                if len(cache) >= _HEAD_CACHE:
                    cache.clear()
                cache[key] = head
        return head, target.cost

    def _head(
        self, target: Target, query: bytes, header_set: int, language: int, mask: int, host: bytes
    ) -> RequestHead:
        headers = [(b"Host", host)]
        for name, value in self.headers.items[header_set]:
            if language >= 0 and name.lower() == b"accept-language":
                assert self.languages is not None
                headers.append((name, self.languages.items[language]))
            else:
                headers.append((name, value))
        if language >= 0 and not any(name.lower() == b"accept-language" for name, _ in headers):
            assert self.languages is not None
            headers.append((b"Accept-Language", self.languages.items[language]))
        headers += [(h.name, h.value) for bit, h in enumerate(self.optional) if mask >> bit & 1]
        if target.method in _BODY_METHODS:
            headers.append((b"Content-Length", b"%d" % self.body))
        request_target = target.path + (b"?" + query if query else b"")
        return validate_request_head(target.method, request_target, b"1.1", headers)


@dataclass(frozen=True)
class Phase:
    """`pool` clients sending `profile` requests from `start` to `end` (seconds, end excluded) at `rate`
    requests/s, ramping linearly to `rate_end` when given; with `on`/`off`, in pulses of `on` seconds
    separated by `off` silent ones. `measure`: the phase whose start and end the timings count from."""

    name: str
    pool: Pool
    profile: Profile
    start: int
    end: int
    rate: float
    rate_end: float
    on: int
    off: int
    noise: bool  # Poisson-distributed counts around the rate (else the rate exactly, carried over)
    measure: bool

    def rate_at(self, second: int) -> float:
        """The mean rate over simulated second `second` (0 outside the phase and between pulses)."""
        if not self.start <= second < self.end:
            return 0.0
        into = second - self.start
        if self.off and into % (self.on + self.off) >= self.on:
            return 0.0
        return self.rate + (self.rate_end - self.rate) * (into + 0.5) / (self.end - self.start)


@dataclass(frozen=True)
class Origin:
    """A toy origin: it serves `capacity` cost units a second; an idle request takes `latency` seconds.
    Below 90 % of its capacity latency grows as in a single queue, latency / (1 - load); beyond, the
    excess fails (5xx) and latency keeps growing with the load. See README.md."""

    capacity: float = 1e9
    latency: float = 0.02

    def second(self, load: float) -> tuple[float, float]:
        """(latency in seconds, share of requests answered 5xx) for a second of `load` cost units."""
        busy = load / self.capacity
        if busy < 0.9:
            return self.latency / (1 - busy), 0.0
        return self.latency * 10 * busy / 0.9, max(0.0, 1 - 1 / busy)


class Request(NamedTuple):
    phase: int  # index into Traffic.phases
    client: Client
    head: RequestHead
    cost: float


class Traffic:
    def __init__(self, data: dict[str, object], where: str) -> None:
        top = Table(data, where)
        self.seed = top.integer("seed", REQUIRED)
        self.duration = top.integer("duration", REQUIRED, minimum=1)
        self.workers = top.integer("workers", 2, minimum=1)
        self.host = top.text("host", "www.example.org").encode()
        origin = top.table("origin")
        self.origin = Origin(
            origin.number("capacity", Origin.capacity, minimum=1.0),
            origin.number("latency", Origin.latency, minimum=0.0),
        )
        origin.done()
        self.rng = random.Random(self.seed)
        pools_table = top.table("pools", required=True)
        self.pools = {name: self._pool(name, pools_table.table(name)) for name in list(pools_table.keys())}
        header_sets = self._header_sets(top.table("headers"))
        profiles_table = top.table("profiles", required=True)
        profiles = {
            name: Profile(profiles_table.table(name), header_sets) for name in list(profiles_table.keys())
        }
        self.phases = [self._phase(table, profiles) for table in top.tables("phases")]
        if not self.phases:
            raise ScenarioError(f"{where}: no [[phases]]")
        if len({phase.name for phase in self.phases}) != len(self.phases):
            raise ScenarioError(f"{where}: phase names must be distinct")
        top.done()
        self._carry = [0.0] * len(self.phases)
        self._heads: dict[tuple[object, ...], RequestHead] = {}

    @staticmethod
    def load(folder: Path) -> Traffic:
        data, name = read_document(folder, "traffic")
        return Traffic(data, f"{folder.name}/{name}")

    def _pool(self, name: str, table: Table) -> Pool:
        count = table.integer("count", REQUIRED, minimum=1)
        if count > MAX_CLIENTS:
            raise ScenarioError(f"{table.where}.count: at most {MAX_CLIENTS}")
        try:
            network = ipaddress.ip_network(table.text("network", REQUIRED))
        except ValueError as exc:
            raise ScenarioError(f"{table.where}.network: {exc}") from None
        step = 24 if network.version == 4 else 64  # client_prefix's grouping
        if network.prefixlen > step:
            raise ScenarioError(f"{table.where}.network: must be a /{step} or wider")
        available = 1 << (step - network.prefixlen)
        prefixes = table.integer("prefixes", min(count, available), minimum=1)
        hosts = 254 if network.version == 4 else 1 << 62
        if prefixes > min(count, available) or count > prefixes * hosts:
            raise ScenarioError(f"{table.where}.prefixes: {count} clients cannot spread over {prefixes}")
        chosen = self.rng.sample(range(available), prefixes)
        per_prefix = [count // prefixes + (index < count % prefixes) for index in range(prefixes)]
        host_bits = network.max_prefixlen - step
        clients = []
        for index, number in zip(chosen, per_prefix, strict=True):
            base = int(network.network_address) + (index << host_bits)
            if network.version == 4:
                offsets = self.rng.sample(range(1, 255), number)
            else:
                offsets = [self.rng.getrandbits(62) + 1 for _ in range(number)]
            for offset in offsets:
                ip = str(ipaddress.ip_address(base + offset))
                prefix = client_prefix(ip)
                clients.append(Client(ip, prefix, zlib.crc32(prefix.encode()) % self.workers))
        self.rng.shuffle(clients)
        pool = Pool(name, tuple(clients), table.flag("solves_challenges", False))
        table.done()
        return pool

    @staticmethod
    def _header_sets(table: Table) -> dict[str, Fields]:
        sets: dict[str, Fields] = {}
        for name in list(table.keys()):
            item = table.table(name)
            preset = item.text("preset", None, choices=tuple(PRESETS))
            fields = item.raw("fields")
            if (preset is None) == (fields is None):
                raise ScenarioError(f"{item.where}: give either a preset or fields")
            pairs: list[tuple[str, str]] = list(PRESETS[preset]()) if preset is not None else []
            if fields is not None:
                if not isinstance(fields, list) or not all(
                    isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, str) for part in pair)
                    for pair in fields
                ):
                    raise ScenarioError(f"{item.where}.fields: must be a list of [name, value] pairs")
                pairs = [(name, value) for name, value in fields]
            user_agent = item.text("user_agent", None)
            if user_agent is not None:
                pairs = [
                    (name, user_agent if name.lower() == "user-agent" else value) for name, value in pairs
                ]
            if any(name.lower() in ("host", "content-length") for name, _ in pairs):
                raise ScenarioError(f"{item.where}: Host and Content-Length are added by the runner")
            item.done()
            sets[name] = tuple((name.encode(), value.encode()) for name, value in pairs)
        return sets

    def _phase(self, table: Table, profiles: dict[str, Profile]) -> Phase:
        pool, profile = table.text("pool", REQUIRED), table.text("profile", REQUIRED)
        if pool not in self.pools or profile not in profiles:
            raise ScenarioError(f"{table.where}: unknown pool {pool!r} or profile {profile!r}")
        start = table.integer("start", 0, minimum=0)
        end = table.integer("end", self.duration, minimum=start + 1)
        rate = table.number("rate", REQUIRED, minimum=0.0)
        rate_end = table.number("rate_end", rate, minimum=0.0)
        if max(rate, rate_end) > MAX_RATE:
            raise ScenarioError(f"{table.where}: rates are at most {MAX_RATE:g} requests/s")
        on, off = table.integer("on", 0, minimum=0), table.integer("off", 0, minimum=0)
        if bool(on) != bool(off):
            raise ScenarioError(f"{table.where}: pulses need both on and off")
        phase = Phase(
            table.text("name", REQUIRED),
            self.pools[pool],
            profiles[profile],
            start,
            min(end, self.duration),
            rate,
            rate_end,
            on,
            off,
            table.flag("noise", True),
            table.flag("measure", False),
        )
        table.done()
        return phase

    def second(self, second: int) -> list[Request]:
        """The requests of simulated second `second`, phases interleaved in a random order."""
        rng, requests = self.rng, []
        for index, phase in enumerate(self.phases):
            mean = phase.rate_at(second)
            if mean <= 0:
                continue
            if phase.noise:
                count = _poisson(rng, mean)
            else:
                self._carry[index] += mean
                count = int(self._carry[index])
                self._carry[index] -= count
            clients, profile = phase.pool.clients, phase.profile
            for _ in range(count):
                client = clients[rng.randrange(len(clients))]
                head, cost = profile.make(rng, self.host, self._heads)
                requests.append(Request(index, client, head, cost))
        rng.shuffle(requests)
        return requests


def _poisson(rng: random.Random, mean: float) -> int:
    """A Poisson draw: by inversion for small means, its normal approximation for large ones."""
    if mean > 50:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    threshold, count, product = math.exp(-mean), 0, rng.random()
    while product > threshold:
        count += 1
        product *= rng.random()
    return count
