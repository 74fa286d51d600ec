"""An operator's own traffic as the drill's legitimate population: `--replay access.log`.

The log is in Combined Log Format (nginx's and Apache's "combined"; the Common Log Format without the
referer and User-Agent is accepted too):

    203.0.113.7 - - [10/Oct/2024:13:55:36 +0200] "GET /news HTTP/1.1" 200 2326 "https://r/" "Mozilla/5.0"

`read_log` keeps the GET and HEAD requests in origin form and reports every other line with its number
and why it was skipped (an unparseable line, a POST whose body a log does not hold, a CONNECT...),
so an operator sees what of their traffic the drill did not replay.

`Replay` sends those requests again, time-compressed by `speedup` (10 = an hour of log in six
minutes), each at its offset from the log's first request, and over again from the start when the
log runs out before the drill does. Each client address of the log becomes one address in
loopback.LEGIT_SOURCES (clients of one /24 stay together in one /24) with one session, so its cookies
and clearance persist, and its requests go in order, one at a time, as a browser's on one connection.
The logged User-Agent and Referer are sent; challenges are solved with the population's hook.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Final

from shieldwall.drill.client import Response
from shieldwall.drill.loopback import LEGIT_SOURCES
from shieldwall.drill.runtime import Bounds, Budget, Requester, Runtime, run_within
from shieldwall.drill.visitors import Outcome, SolveChallenge, VisitLog

MAX_LINES: Final = 1_000_000
MAX_LINE_LENGTH: Final = 16 * 1024
MAX_PROBLEMS: Final = 1_000  # reported one by one; beyond, only counted
MAX_SPEEDUP: Final = 10_000.0
MAX_CLIENTS: Final = 50_000
HABIT: Final = "replay"
DEFAULT_BOUNDS: Final = Bounds(1_000_000, 60.0)
_QUOTED: Final = r'"((?:[^"\\]|\\.)*)"'
_LINE: Final = re.compile(
    rf"(\S+) \S+ \S+ \[([^\]]+)\] {_QUOTED} (\d{{3}}) (?:\d+|-)(?: {_QUOTED} {_QUOTED})?"
)
_MONTHS: Final = {
    name: number
    for number, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_TIME: Final = re.compile(r"(\d{2})/([A-Z][a-z]{2})/(\d{4}):(\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})")
_REPLAYED: Final = frozenset({"GET", "HEAD"})


@dataclass(frozen=True, slots=True)
class LogEntry:
    """One replayable request: when (epoch seconds), from whom, what, and the browser it came from."""

    at: float
    client: str
    method: str
    target: str
    user_agent: str = ""
    referer: str = ""


@dataclass(frozen=True, slots=True)
class Problem:
    line: int
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


@dataclass
class ParsedLog:
    entries: list[LogEntry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    skipped: int = 0  # lines not replayed, problems included (also those beyond MAX_PROBLEMS)

    def skip(self, line: int, reason: str) -> None:
        self.skipped += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(Problem(line, reason))


def parse_time(text: str) -> float:
    """Epoch seconds of a CLF time, "10/Oct/2024:13:55:36 +0200" (ValueError otherwise). Month names
    are always English, whatever the locale."""
    match = _TIME.fullmatch(text)
    if match is None or match.group(2) not in _MONTHS:
        raise ValueError(f"not a log time: {text[:40]!r}")
    day, _, year, hour, minute, second, sign, tz_hours, tz_minutes = match.groups()
    offset = timedelta(hours=int(tz_hours), minutes=int(tz_minutes)) * (-1 if sign == "-" else 1)
    moment = datetime(
        int(year), _MONTHS[match.group(2)], int(day), int(hour), int(minute), int(second),
        tzinfo=timezone(offset),
    )  # fmt: skip
    return moment.timestamp()


def parse_line(text: str) -> LogEntry | str:
    """One log line as a LogEntry, or why it is not replayed."""
    if len(text) > MAX_LINE_LENGTH:
        return f"longer than {MAX_LINE_LENGTH} characters"
    match = _LINE.match(text)
    if match is None:
        return "not in Combined or Common Log Format"
    client, when, request, _status, referer, user_agent = match.groups()
    try:
        ipaddress.ip_address(client)
    except ValueError:
        return f"client {client[:60]!r} is not an IP address"
    try:
        at = parse_time(when)
    except ValueError as exc:
        return str(exc)
    parts = request.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/"):
        return f"request line {request[:60]!r} is not METHOD TARGET HTTP/x"
    method, target, _version = parts
    if method not in _REPLAYED:
        return f"{method[:20]} is not replayed (a log holds no request body)"
    if not target.startswith("/"):
        return f"target {target[:60]!r} is not a path"
    return LogEntry(at, client, method, target, _unquote(user_agent or ""), _unquote(referer or ""))


def read_log(lines: Iterable[str], max_lines: int = MAX_LINES) -> ParsedLog:
    """The replayable entries of a log, in time order, and every other line's number and reason."""
    parsed = ParsedLog()
    for number, line in enumerate(lines, 1):
        if number > max_lines:
            parsed.skip(number, f"the log is longer than {max_lines} lines; the rest is not read")
            break
        text = line.rstrip("\r\n")
        if not text.strip():
            continue
        entry = parse_line(text)
        if isinstance(entry, str):
            parsed.skip(number, entry)
        else:
            parsed.entries.append(entry)
    parsed.entries.sort(key=lambda entry: entry.at)
    return parsed


def read_log_file(path: Path, max_lines: int = MAX_LINES) -> ParsedLog:
    with path.open(encoding="utf-8", errors="replace") as lines:
        return read_log(lines, max_lines)


def map_clients(clients: Iterable[str], pool: str = LEGIT_SOURCES) -> dict[str, str]:
    """A loopback address in `pool` for each distinct client, in order of first appearance: clients
    of one /24 (IPv4) or /64 (IPv6) get hosts of one /24 of the pool, in turn."""
    network = ipaddress.IPv4Network(pool)
    base = int(network.network_address)
    prefixes: dict[str, int] = {}  # the client's prefix → the /24 of the pool it maps to
    hosts: dict[str, int] = {}  # hosts handed out in each client prefix so far
    mapping: dict[str, str] = {}
    for client in clients:
        if client in mapping:
            continue
        if len(mapping) >= MAX_CLIENTS:
            raise ValueError(f"more than {MAX_CLIENTS} distinct clients in the log")
        address = ipaddress.ip_address(client)
        prefix = str(ipaddress.ip_network(f"{address}/{24 if address.version == 4 else 64}", strict=False))
        index = prefixes.setdefault(prefix, len(prefixes))
        if index >= network.num_addresses // 256:
            raise ValueError(f"more client networks in the log than /24s in {pool}")
        host = hosts.get(prefix, 0)
        hosts[prefix] = host + 1
        mapping[client] = str(ipaddress.IPv4Address(base + index * 256 + 1 + host % 254))
    return mapping


@dataclass(frozen=True)
class Replay:
    """The log's requests again, `speedup` times faster, looping, until `bounds` run out."""

    entries: tuple[LogEntry, ...]
    speedup: float = 1.0
    bounds: Bounds = DEFAULT_BOUNDS
    solve_challenge: SolveChallenge | None = None

    def __post_init__(self) -> None:
        if not self.entries:
            raise ValueError("the log has no request to replay")
        if not 0 < self.speedup <= MAX_SPEEDUP:
            raise ValueError(f"speedup must be within (0, {MAX_SPEEDUP:g}]")

    @property
    def span(self) -> float:
        """Seconds one pass over the log takes at this speed (at least one second)."""
        return max(1.0, (self.entries[-1].at - self.entries[0].at) / self.speedup)

    async def run(self, runtime: Runtime, *, log: VisitLog, within: Budget | None = None) -> VisitLog:
        budget = Budget(self.bounds, runtime.clock, within)
        sources = map_clients(entry.client for entry in self.entries)
        numbers = {client: number for number, client in enumerate(sources)}
        queues: dict[str, asyncio.Queue[LogEntry | None]] = {client: asyncio.Queue() for client in sources}
        start, first = runtime.clock.monotonic(), self.entries[0].at

        async def schedule() -> None:
            loop_start = start
            try:
                while not budget.expired():
                    for entry in self.entries:
                        due = loop_start + (entry.at - first) / self.speedup
                        await runtime.rest(due - runtime.clock.monotonic(), budget)
                        if budget.expired():
                            return
                        queues[entry.client].put_nowait(entry)
                    loop_start += self.span
            finally:
                for queue in queues.values():  # the end: each client stops after what it was given
                    queue.put_nowait(None)

        async def client(address: str) -> None:
            session = _AsBrowser(runtime.open_session("legit", sources[address]))
            try:
                while (entry := await queues[address].get()) is not None:
                    if not budget.take():
                        return
                    session.user_agent = entry.user_agent or "-"
                    headers = [("Accept", "*/*")]
                    if entry.referer and entry.referer != "-":
                        headers.append(("Referer", entry.referer))
                    started = runtime.clock.monotonic()
                    response = await session.request(entry.method, entry.target, headers)
                    latency, challenged = response.latency, False
                    if self.solve_challenge is not None and response.status:
                        solved = await self.solve_challenge(response, session)
                        if solved is not None:
                            response, challenged = solved, True
                            latency = runtime.clock.monotonic() - started
                    log.add(
                        Outcome(
                            started,
                            numbers[address],
                            HABIT,
                            entry.method,
                            entry.target,
                            response.status,
                            latency,
                            challenged,
                            response.error,
                        )
                    )
            finally:
                await session.close()

        await run_within(budget, [schedule(), *(client(address) for address in sources)])
        return log


class _AsBrowser:
    """A replayed client's session: every request carries the User-Agent of the log line being
    replayed, those a challenge solver sends included, as the same browser's would (a clearance is
    bound to the User-Agent that earned it)."""

    def __init__(self, session: Requester) -> None:
        self.session = session
        self.user_agent = "-"

    async def request(
        self, method: str, target: str, headers: Sequence[tuple[str, str]] = (), body: bytes = b""
    ) -> Response:
        kept = [(name, value) for name, value in headers if name.lower() != "user-agent"]
        return await self.session.request(method, target, [("User-Agent", self.user_agent), *kept], body)

    async def close(self) -> None:
        await self.session.close()


def _unquote(text: str) -> str:
    """A quoted log field's text: nginx escapes '"' and '\\' with a backslash (and others as \\xHH)."""
    return re.sub(r"\\(.)", r"\1", text)
