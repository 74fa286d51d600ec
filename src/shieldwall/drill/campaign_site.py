"""The campaign site drills defend: a small origin with realistic routes and a finite capacity.

Unlike the test origin (drill/origin.py), which answers as fast as it can, this one behaves like the
application a campaign really runs. Every request takes one of `workers` slots for its route's service
time, in units of `service_ms`: a static file 0.1, the JSON API 0.5, a page 1, a form POST 2 (a login
hashes a password), the search 10. Requests wait for a slot in a bounded backlog, and beyond that
backlog the site answers 503 at once. Offered more than its capacity, it saturates the way a real site
does — latency climbs to the backlog's length, then requests are refused — and a drill can show what a
shield in front of it changes. It also caps open connections and closes a connection whose request has
not fully arrived within `client_timeout`, as a real server does, so slow-connection attacks exhaust it
in the same way. (uvloop's timers are millisecond-grained: keep service_ms at 10 or more for the cheap
routes to cost what they say.)

Routes: `/` (HTML, cacheable 60 s, referencing /static/app.css, /static/app.js and /static/logo.svg,
cacheable for an hour), `/news/<slug>` (cacheable 60 s), `/search?q=` (expensive, uncacheable),
`/donate` and `/volunteer` (GET form, POST submission, never cached), `/login` (POST with the demo
password sets the `session` cookie), `/account` (needs that cookie, private), `/feed.xml` (RSS,
cacheable 60 s), `/api/events` (JSON, cacheable 30 s).

The drill labels every request `x-drill-kind: legit|attack`; the site counts requests per route and per
label, so a scorecard knows how much attack traffic got through a shield (leakage) and how busy the
site was. `GET /__drill/stats` returns those counters as JSON and `POST /__drill/reset` zeroes them; both
skip the worker pool.

    python -m shieldwall.drill.campaign_site --listen 127.0.0.1:0 [--workers 8 --service-ms 20 ...]
prints `campaign site listening on 127.0.0.1:PORT` once ready and serves until SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import re
import secrets
import sys
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from html import escape
from http import HTTPStatus
from typing import Any, Final, cast
from urllib.parse import parse_qs, urlsplit

import httptools
import uvloop

from shieldwall.drill.client import Session, Target
from shieldwall.drill.loopback import require_loopback
from shieldwall.drill.serving import parse_listen, serve_until_stopped

DEMO_PASSWORD: Final = "correct horse battery staple"  # what the drill's supporters log in with
KINDS: Final = ("legit", "attack", "unmarked")
STATS_PATH: Final = "/__drill/stats"
RESET_PATH: Final = "/__drill/reset"
_MAX_BODY: Final = 64 * 1024
_MAX_HEAD: Final = 32 * 1024
_MAX_QUEUED: Final = 16  # pipelined requests waiting on one connection before it stops reading
_USER: Final = re.compile(r"[A-Za-z0-9_.@+-]{1,64}")


@dataclass(frozen=True)
class SiteSettings:
    """Capacity: `workers` requests in service at once, each for its route's cost times `service_ms`;
    up to `backlog` more wait for a slot, any beyond get a 503. `max_connections` open at once (more
    are closed at accept); a connection has `client_timeout` seconds to deliver each request."""

    workers: int = 8
    service_ms: float = 20.0
    backlog: int = 64
    max_connections: int = 512
    client_timeout: float = 20.0

    @property
    def capacity_rps(self) -> float:
        """Requests per second at the base cost (the home page) with every worker busy."""
        return self.workers * 1000.0 / self.service_ms


@dataclass
class SiteStats:
    """What the site saw since its last reset; `snapshot` is what /__drill/stats returns."""

    started: float
    received: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    served: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    rejected: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))
    routes: dict[str, dict[str, int]] = field(default_factory=dict)
    busy_seconds: float = 0.0  # worker-seconds spent in service
    connections_refused: int = 0
    max_waiting: int = 0

    def snapshot(self, now: float, settings: SiteSettings, site: CampaignSite) -> dict[str, object]:
        return {
            "elapsed_s": now - self.started,
            "workers": settings.workers,
            "backlog": settings.backlog,
            "service_ms": settings.service_ms,
            "busy_s": self.busy_seconds,
            "in_service": site.in_service,
            "waiting": site.waiting,
            "max_waiting": self.max_waiting,
            "connections": site.connections,
            "connections_refused": self.connections_refused,
            "received": self.received,
            "served": self.served,
            "rejected": self.rejected,
            "routes": self.routes,
        }


@dataclass(frozen=True)
class OriginCounters:
    """The site's counters at one instant, as a drill reads them (`read_counters`) to take the
    difference between two marks."""

    elapsed_s: float
    busy_s: float
    workers: int
    received: dict[str, int]
    served: dict[str, int]
    rejected: dict[str, int]
    connections_refused: int

    @classmethod
    def from_stats(cls, stats: Mapping[str, Any]) -> OriginCounters:
        """From the JSON of GET /__drill/stats (SiteStats.snapshot)."""
        return cls(
            float(stats["elapsed_s"]),
            float(stats["busy_s"]),
            int(stats["workers"]),
            {kind: int(n) for kind, n in stats["received"].items()},
            {kind: int(n) for kind, n in stats["served"].items()},
            {kind: int(n) for kind, n in stats["rejected"].items()},
            int(stats["connections_refused"]),
        )


async def read_counters(site: Target, timeout: float = 5.0) -> OriginCounters | None:
    """The counters of the campaign site at `site` (its own address, not a shield's in front of it),
    or None when it does not answer them."""
    session = Session(site, kind="drill", timeout=timeout)
    try:
        response = await session.request("GET", STATS_PATH)
    finally:
        await session.close()
    if response.status != 200:
        return None
    return OriginCounters.from_stats(json.loads(response.body))


async def reset_counters(site: Target, timeout: float = 5.0) -> bool:
    """Zero the campaign site's counters; whether it did."""
    session = Session(site, kind="drill", timeout=timeout)
    try:
        response = await session.request("POST", RESET_PATH)
    finally:
        await session.close()
    return response.status == 204


@dataclass
class _Request:
    method: str = ""
    target: bytes = b""
    headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body: list[bytes] = field(default_factory=list)
    body_len: int = 0
    head_len: int = 0
    keep_alive: bool = True
    refusal: int = 0  # a status to answer at once (unparseable or oversized request), then close

    def header(self, name: bytes) -> bytes | None:
        for key, value in self.headers:
            if key.lower() == name:
                return value
        return None

    @property
    def kind(self) -> str:
        label = (self.header(b"x-drill-kind") or b"").decode("latin-1").strip().lower()
        return label if label in KINDS else "unmarked"

    def form(self) -> dict[str, str]:
        fields = parse_qs(b"".join(self.body).decode("latin-1"))
        return {name: values[0] for name, values in fields.items()}


@dataclass(frozen=True)
class _Answer:
    status: int
    body: bytes
    content_type: bytes = b"text/html; charset=utf-8"
    cache: bytes = b"no-store"
    headers: tuple[tuple[bytes, bytes], ...] = ()


# -- content -------------------------------------------------------------------------------------------

ARTICLES: Final = (
    ("rally-draws-thousands", "Rally draws thousands to the town square"),
    ("our-plan-for-schools", "Our plan for schools"),
    ("debate-night-recap", "Debate night: what was said"),
    ("volunteers-knock-on-10000-doors", "Volunteers knock on 10,000 doors"),
    ("polling-stations-and-hours", "Where and when to vote"),
    ("thank-you-donors", "Thank you to our small donors"),
)
_TITLES: Final = dict(ARTICLES)
STATIC_PATHS: Final = ("/static/app.css", "/static/app.js", "/static/logo.svg")
_STATIC: Final = {
    "/static/app.css": (b"text/css", b"body{font-family:sans-serif;margin:0 auto;max-width:46em}" * 40),
    "/static/app.js": (b"text/javascript", b"document.documentElement.classList.add('js');\n" * 60),
    "/static/logo.svg": (
        b"image/svg+xml",
        b"<svg xmlns='http://www.w3.org/2000/svg' width='64' height='64'>"
        b"<circle cx='32' cy='32' r='30'/></svg>",
    ),
}


def _page(title: str, main: str) -> bytes:
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{escape(title)} · Vote Green</title>"
        "<link rel='stylesheet' href='/static/app.css'><script src='/static/app.js' defer></script></head>"
        "<body><header><img src='/static/logo.svg' alt='logo'><nav><a href='/'>Home</a> "
        "<a href='/donate'>Donate</a> <a href='/volunteer'>Volunteer</a> <a href='/login'>Log in</a></nav>"
        f"</header><main>{main}</main><footer>Paid for by the campaign.</footer></body></html>\n"
    ).encode()


def _article_list(slugs: list[str]) -> str:
    items = "".join(f"<li><a href='/news/{slug}'>{escape(_TITLES[slug])}</a></li>" for slug in slugs)
    return f"<ul>{items}</ul>"


_HOME: Final = _page("Home", "<h1>Vote Green on Thursday</h1>" + _article_list([s for s, _ in ARTICLES]))


def _form(action: str, fields: tuple[str, ...]) -> bytes:
    inputs = "".join(f"<label>{name} <input name='{name}'></label>" for name in fields)
    return _page(
        action.strip("/").title(),
        f"<form method='post' action='{action}'>{inputs}<button>Send</button></form>",
    )


_RSS: Final = (
    "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>Vote Green news</title>"
    + "".join(f"<item><title>{escape(t)}</title><link>/news/{s}</link></item>" for s, t in ARTICLES)
    + "</channel></rss>\n"
).encode()
_EVENTS: Final = json.dumps(
    [{"id": i, "title": t, "path": f"/news/{s}"} for i, (s, t) in enumerate(ARTICLES, 1)]
).encode()


# -- the site ------------------------------------------------------------------------------------------


class CampaignSite:
    """State shared by every connection of one server: capacity, sessions' key, counters."""

    def __init__(self, settings: SiteSettings) -> None:
        self.settings = settings
        self.loop = asyncio.get_running_loop()
        self.slots = asyncio.Semaphore(settings.workers)
        self.in_service = 0
        self.waiting = 0
        self.connections = 0
        self.stats = SiteStats(self.loop.time())
        self._session_key = secrets.token_bytes(32)

    def reset(self) -> None:
        self.stats = SiteStats(self.loop.time())

    def stats_json(self) -> bytes:
        return json.dumps(self.stats.snapshot(self.loop.time(), self.settings, self)).encode()

    def session_token(self, user: str) -> str:
        return user + "." + hmac.new(self._session_key, user.encode(), hashlib.sha256).hexdigest()[:32]

    def session_user(self, cookie_header: bytes | None) -> str | None:
        for pair in (cookie_header or b"").decode("latin-1").split(";"):
            name, _, value = pair.strip().partition("=")
            user, _, _mac = value.rpartition(".")
            if name == "session" and user and hmac.compare_digest(value, self.session_token(user)):
                return user
        return None

    def count(self, route: str, kind: str) -> None:
        self.stats.received[kind] += 1
        per_route = self.stats.routes.get(route)
        if per_route is None:
            per_route = self.stats.routes[route] = dict.fromkeys(KINDS, 0)
        per_route[kind] += 1

    async def serve(self, request: _Request, route: _Route) -> _Answer:
        """Run `request` through the worker pool: a slot for the route's service time, then its answer;
        503 at once when the backlog is full."""
        kind, stats, settings = request.kind, self.stats, self.settings
        if self.in_service >= settings.workers and self.waiting >= settings.backlog:
            stats.rejected[kind] += 1
            return _Answer(
                503, _page("Busy", "<h1>Too busy, try again</h1>"), headers=((b"Retry-After", b"5"),)
            )
        self.waiting += 1
        stats.max_waiting = max(stats.max_waiting, self.waiting)
        try:
            await self.slots.acquire()
        finally:
            self.waiting -= 1
        self.in_service += 1
        started = self.loop.time()
        try:
            await asyncio.sleep(route.cost * settings.service_ms / 1000)
        finally:
            self.in_service -= 1
            self.slots.release()
            stats.busy_seconds += self.loop.time() - started
        stats.served[kind] += 1
        return route.handler(self, request)


# -- routes --------------------------------------------------------------------------------------------


def _home(site: CampaignSite, request: _Request) -> _Answer:
    return _Answer(200, _HOME, cache=b"public, max-age=60")


def _static(site: CampaignSite, request: _Request) -> _Answer:
    content_type, body = _STATIC[_path(request)]
    return _Answer(200, body, content_type, b"public, max-age=3600")


def _news(site: CampaignSite, request: _Request) -> _Answer:
    slug = _path(request).removeprefix("/news/")
    title = _TITLES.get(slug)
    if title is None:
        return _Answer(404, _page("Not found", "<h1>No such article</h1>"), cache=b"public, max-age=60")
    body = f"<article><h1>{escape(title)}</h1>" + "<p>Campaign news, in some detail.</p>" * 30 + "</article>"
    return _Answer(200, _page(title, body), cache=b"public, max-age=60")


def _search(site: CampaignSite, request: _Request) -> _Answer:
    query = parse_qs(urlsplit(request.target.decode("latin-1")).query).get("q", [""])[0]
    hits = [slug for slug, title in ARTICLES if query.lower() in title.lower()]
    main = f"<h1>Results for “{escape(query[:200])}”</h1>" + _article_list(hits)
    return _Answer(200, _page("Search", main))


def _form_page(site: CampaignSite, request: _Request) -> _Answer:
    path = _path(request)
    fields = {"/donate": ("amount", "email"), "/volunteer": ("name", "email"), "/login": ("user", "password")}
    return _Answer(200, _form(path, fields[path]))


def _donate(site: CampaignSite, request: _Request) -> _Answer:
    form = request.form()
    amount = form.get("amount", "")
    if not amount.isdigit() or not 1 <= int(amount) <= 100_000 or "@" not in form.get("email", ""):
        return _Answer(400, _page("Donate", "<h1>Please give an amount and an email address</h1>"))
    return _Answer(200, _page("Thank you", f"<h1>Thank you for your gift of ${int(amount)}</h1>"))


def _volunteer(site: CampaignSite, request: _Request) -> _Answer:
    form = request.form()
    if not form.get("name") or "@" not in form.get("email", ""):
        return _Answer(400, _page("Volunteer", "<h1>Please give your name and an email address</h1>"))
    return _Answer(200, _page("Welcome", f"<h1>Welcome aboard, {escape(form['name'][:100])}</h1>"))


def _login(site: CampaignSite, request: _Request) -> _Answer:
    form = request.form()
    user = form.get("user", "")
    if not _USER.fullmatch(user) or not hmac.compare_digest(form.get("password", ""), DEMO_PASSWORD):
        return _Answer(401, _page("Log in", "<h1>Wrong user name or password</h1>"))
    cookie = f"session={site.session_token(user)}; Path=/; HttpOnly; SameSite=Lax".encode()
    return _Answer(303, b"", headers=((b"Location", b"/account"), (b"Set-Cookie", cookie)))


def _account(site: CampaignSite, request: _Request) -> _Answer:
    user = site.session_user(request.header(b"cookie"))
    if user is None:
        return _Answer(303, b"", headers=((b"Location", b"/login"),))
    main = f"<h1>Hello, {escape(user)}</h1><p>Your donations and shifts.</p>"
    return _Answer(200, _page("Your account", main), cache=b"private, no-store")


def _feed(site: CampaignSite, request: _Request) -> _Answer:
    return _Answer(200, _RSS, b"application/rss+xml", b"public, max-age=60")


def _events(site: CampaignSite, request: _Request) -> _Answer:
    return _Answer(200, _EVENTS, b"application/json", b"public, max-age=30")


def _not_found(site: CampaignSite, request: _Request) -> _Answer:
    return _Answer(404, _page("Not found", "<h1>Not found</h1>"))


@dataclass(frozen=True)
class _Route:
    name: str  # the counters' key, e.g. "GET /news/*"
    cost: float  # service time in units of service_ms
    handler: Callable[[CampaignSite, _Request], _Answer]


_GET_ROUTES: Final = {
    "/": _Route("GET /", 1.0, _home),
    "/search": _Route("GET /search", 10.0, _search),
    "/donate": _Route("GET /donate", 1.0, _form_page),
    "/volunteer": _Route("GET /volunteer", 1.0, _form_page),
    "/login": _Route("GET /login", 1.0, _form_page),
    "/account": _Route("GET /account", 1.0, _account),
    "/feed.xml": _Route("GET /feed.xml", 1.0, _feed),
    "/api/events": _Route("GET /api/events", 0.5, _events),
    **{path: _Route("GET /static/*", 0.1, _static) for path in STATIC_PATHS},
}
_POST_ROUTES: Final = {
    "/donate": _Route("POST /donate", 2.0, _donate),
    "/volunteer": _Route("POST /volunteer", 2.0, _volunteer),
    "/login": _Route("POST /login", 2.0, _login),
}
_NEWS: Final = _Route("GET /news/*", 1.0, _news)
_NOT_FOUND: Final = _Route("other", 1.0, _not_found)


def _path(request: _Request) -> str:
    return request.target.decode("latin-1").partition("?")[0]


def _route(method: str, path: str) -> _Route:
    if method in ("GET", "HEAD"):
        if path.startswith("/news/"):
            return _NEWS
        return _GET_ROUTES.get(path, _NOT_FOUND)
    if method == "POST":
        return _POST_ROUTES.get(path, _NOT_FOUND)
    return _NOT_FOUND


# -- connections ---------------------------------------------------------------------------------------


class SiteProtocol(asyncio.Protocol):
    """One client connection: requests are parsed by httptools and answered one at a time, in order."""

    def __init__(self, site: CampaignSite) -> None:
        self._site = site
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._current = _Request()
        self._queue: deque[_Request] = deque()
        self._task: asyncio.Task[None] | None = None
        self._deadline: asyncio.TimerHandle | None = None
        self._counted = False
        self._reading = True  # False after a request that ends the connection
        self._closing = False

    # -- transport callbacks ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = cast(asyncio.Transport, transport)
        site = self._site
        if site.connections >= site.settings.max_connections:
            site.stats.connections_refused += 1
            self._closing = True
            self._transport.abort()
            return
        site.connections += 1
        self._counted = True
        self._arm_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        if self._counted:
            self._site.connections -= 1
            self._counted = False
        if self._deadline is not None:
            self._deadline.cancel()
        if self._task is not None:
            self._task.cancel()
        self._queue.clear()

    def data_received(self, data: bytes) -> None:
        if not self._reading:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError:  # HttpParserUpgrade included: no upgrades here
            status = 431 if self._current.head_len > _MAX_HEAD else 400
            self._enqueue(_Request(keep_alive=False, refusal=status))

    # -- parser callbacks: record only ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._current = _Request()

    def on_url(self, url: bytes) -> None:
        self._current.target += url
        self._current.head_len += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._current.headers.append((name, value))
        self._current.head_len += len(name) + len(value)
        if self._current.head_len > _MAX_HEAD:
            raise ValueError("request head too large")

    def on_headers_complete(self) -> None:
        self._current.method = self._parser.get_method().decode("ascii")
        self._current.keep_alive = self._parser.should_keep_alive()

    def on_body(self, body: bytes) -> None:
        request = self._current
        request.body_len += len(body)
        if request.body_len <= _MAX_BODY:
            request.body.append(body)

    def on_message_complete(self) -> None:
        if self._current.body_len > _MAX_BODY:
            self._current.keep_alive, self._current.refusal = False, 413
        self._enqueue(self._current)

    # -- answering -----------------------------------------------------------------------------------

    def _enqueue(self, request: _Request) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if not request.keep_alive:
            self._reading = False
        self._queue.append(request)
        if len(self._queue) > _MAX_QUEUED and self._transport is not None:
            self._transport.pause_reading()
        if self._task is None:
            self._task = self._site.loop.create_task(self._answer_queue())

    async def _answer_queue(self) -> None:
        while self._queue and not self._closing:
            request = self._queue.popleft()
            await self._answer(request)
            if self._transport is not None and len(self._queue) <= _MAX_QUEUED:
                self._transport.resume_reading()
        self._task = None
        if not self._closing:
            self._arm_deadline()

    async def _answer(self, request: _Request) -> None:
        site, path = self._site, _path(request)
        if request.refusal:
            answer = _Answer(request.refusal, HTTPStatus(request.refusal).phrase.encode(), b"text/plain")
        elif path == STATS_PATH and request.method == "GET":
            answer = _Answer(200, site.stats_json(), b"application/json")
        elif path == RESET_PATH and request.method == "POST":
            site.reset()
            answer = _Answer(204, b"")
        else:
            route = _route(request.method, path)
            site.count(route.name, request.kind)
            answer = await site.serve(request, route)
        self._write(request, answer)

    def _write(self, request: _Request, answer: _Answer) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        lines = [
            f"HTTP/1.1 {answer.status} {HTTPStatus(answer.status).phrase}".encode(),
            b"Server: campaign-site",
            b"Cache-Control: " + answer.cache,
        ]
        if answer.status != 204:
            lines.append(b"Content-Length: %d" % len(answer.body))
        if answer.body:
            lines.append(b"Content-Type: " + answer.content_type)
        lines.extend(name + b": " + value for name, value in answer.headers)
        if not request.keep_alive:
            lines.append(b"Connection: close")
        body = b"" if request.method == "HEAD" else answer.body
        self._transport.write(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        if not request.keep_alive:
            self._closing = True
            self._transport.close()

    def _arm_deadline(self) -> None:
        """The next request must have arrived completely within client_timeout."""
        if self._deadline is not None:
            self._deadline.cancel()
        self._deadline = self._site.loop.call_later(self._site.settings.client_timeout, self._expire)

    def _expire(self) -> None:
        self._deadline = None
        if self._transport is not None and not self._closing:
            self._closing = True
            self._transport.close()


async def start_site(host: str, port: int, settings: SiteSettings) -> tuple[asyncio.AbstractServer, int]:
    """Serve the campaign site on loopback (host, port) in the running loop; the server and its port."""
    site = CampaignSite(settings)
    server = await site.loop.create_server(
        lambda: SiteProtocol(site), require_loopback(host), port, backlog=1024
    )
    bound_port: int = server.sockets[0].getsockname()[1]
    return server, bound_port


async def _serve(host: str, port: int, settings: SiteSettings) -> None:
    server, bound = await start_site(host, port, settings)
    await serve_until_stopped(server, f"campaign site listening on {host}:{bound}")


def main(argv: list[str] | None = None) -> int:
    defaults = SiteSettings()
    parser = argparse.ArgumentParser(prog="python -m shieldwall.drill.campaign_site", description=__doc__)
    parser.add_argument("--listen", type=parse_listen, default="127.0.0.1:0", help="HOST:PORT on loopback")
    parser.add_argument("--workers", type=int, default=defaults.workers, help="requests in service at once")
    parser.add_argument("--service-ms", type=float, default=defaults.service_ms, help="base service time")
    parser.add_argument("--backlog", type=int, default=defaults.backlog, help="requests waiting for a worker")
    parser.add_argument("--max-connections", type=int, default=defaults.max_connections)
    parser.add_argument("--client-timeout", type=float, default=defaults.client_timeout, help="seconds")
    args = parser.parse_args(argv)
    settings = SiteSettings(
        args.workers, args.service_ms, args.backlog, args.max_connections, args.client_timeout
    )
    if min(settings.workers, settings.max_connections) < 1 or settings.backlog < 0 or settings.service_ms < 0:
        parser.error(
            "--workers and --max-connections must be at least 1, --backlog and --service-ms not negative"
        )
    host, port = args.listen
    uvloop.run(_serve(host, port, settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
