"""`shieldwall top`: the live dashboard at a glance in a terminal. It polls the admin API's
/api/v1/status once a second (the snapshot documented in shieldwall.control.status, the same one the
dashboard draws) and shows the mode, the rates by decision, the origin's latency and admission queue, the
top sources and paths, and the attack signatures.

Everything shown from traffic (paths, user agents, signature descriptions) goes through `_plain`: never
read as rich markup, control characters replaced, clipped to one line, so a hostile User-Agent cannot
restyle or clear the operator's terminal.

Exit codes: 0 done (also on Ctrl-C); 1 the admin API could not be reached (with --once);
2 bad input, a bad configuration, or no usable token."""

from __future__ import annotations

import contextlib
import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Final, NoReturn

import click
from rich.columns import Columns
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.live import Live
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from shieldwall.cli.admin import admin_token, base_url
from shieldwall.cli.options import CONTEXT, config_option, load_settings
from shieldwall.core.clock import Clock, SystemClock
from shieldwall.report.tables import clip
from shieldwall.report.words import clock, millis, percent, rate

EXIT_UNREACHABLE: Final = 1
EXIT_BAD_INPUT: Final = 2
INTERVAL: Final = 1.0  # the control process makes one snapshot a second
SPARK_SECONDS: Final = 60
TOP_ROWS: Final = 5
_SPARKS: Final = " ▁▂▃▄▅▆▇█"
_NONE: Final = "\N{EN DASH}"  # a figure not known (yet)
_MODE_STYLE: Final = {
    "normal": "bold white on green",
    "elevated": "bold black on yellow",
    "under_attack": "bold white on red",
}
_BAND_STYLE: Final = {"normal": "green", "elevated": "yellow", "under_attack": "red"}
_OUTCOMES: Final = (
    ("allow", "allowed"),
    ("cache", "from cache"),
    ("limit", "rate-limited"),
    ("block", "blocked"),
    ("challenge", "challenged"),
    ("shed", "shed (503)"),
)
_TOPS: Final = (
    ("prefix", "prefixes"),
    ("client_ip", "addresses"),
    ("path", "paths"),
    ("user_agent", "user agents"),
)

Fetch = Callable[[], Mapping[str, Any]]


class FetchError(Exception):
    """The status could not be had; `refused` when the API said the token is wrong."""

    def __init__(self, message: str, *, refused: bool = False) -> None:
        super().__init__(message)
        self.refused = refused


def http_fetcher(admin_url: str, token: str, timeout: float = 3.0) -> Fetch:
    """GET admin_url/api/v1/status with the bearer token, as a function of nothing."""
    url = f"{admin_url.rstrip('/')}/api/v1/status"

    def fetch() -> Mapping[str, Any]:
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                body = response.read()
        except urllib.error.HTTPError as exc:
            exc.close()  # it holds the response and its socket
            if exc.code == 401:
                raise FetchError(
                    f"{url}: the admin token was refused; is --config the shield's own?", refused=True
                ) from None
            raise FetchError(f"{url}: HTTP {exc.code} {exc.reason}") from None
        except OSError as exc:
            raise FetchError(f"cannot reach {url}: {getattr(exc, 'reason', exc)}") from None
        try:
            data = json.loads(body)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise FetchError(f"{url}: the answer is not a status snapshot; is --url the admin listener?")
        return data

    return fetch


# ---------------------------------------------------------------------------------------------- a frame


def _plain(value: object, limit: int = 60, style: str = "") -> Text:
    """Text from traffic, shown as itself: no markup, no control characters, one clipped line."""
    text = "".join(ch if ch.isprintable() else "\ufffd" for ch in str(value))
    return Text(clip(text, limit), style=style)


def _number(value: object, show: Callable[[float], str] = rate) -> str:
    return show(float(value)) if isinstance(value, int | float) else _NONE


def _spark(values: Sequence[float], style: str) -> Text:
    """One character a second, scaled to the highest; any traffic at all shows at least the lowest bar."""
    top = max([*values, 0.0])
    steps = len(_SPARKS) - 1
    bars = (_SPARKS[max(1, min(steps, round(value / top * steps)))] if value > 0 else " " for value in values)
    return Text("".join(bars), style=style)


class _Latest:
    """A row of one-character cells, one a second, clipped from the left to the width there is, so the
    newest second is always on the right."""

    def __init__(self, cells: Text) -> None:
        self.cells = cells

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = max(0, options.max_width)
        yield self.cells[len(self.cells) - width :] if width < len(self.cells) else self.cells

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(1, max(1, len(self.cells)))


def _header(snapshot: Mapping[str, Any], problem: str | None) -> Text:
    mode = str(snapshot.get("mode", "normal"))
    line = Text("shieldwall  ", style="bold")
    line.append(f" {mode.replace('_', ' ').upper()} ", style=_MODE_STYLE.get(mode, "bold reverse"))
    if snapshot.get("pinned"):
        line.append("  pinned", style="bold")
    if snapshot.get("incident"):
        line.append("  incident ")
        line.append_text(_plain(snapshot["incident"]))
    wall = snapshot.get("wall")
    if isinstance(wall, int | float):
        line.append(f"  at {clock(wall)} UTC", style="dim")
    if problem:
        line.append("\n")
        line.append_text(_plain(problem, 200, "bold red"))
    return line


def _why(snapshot: Mapping[str, Any]) -> Text | None:
    detector = snapshot.get("detector") or {}
    reasons = detector.get("reasons") or []
    words = [f"why: {'; '.join(str(reason) for reason in reasons)}"] if reasons else []
    if detector.get("baseline_ready") is False:
        words.append(f"learning normal traffic ({detector.get('learned_seconds', 0)} s so far)")
    return _plain(" · ".join(words), 200, "dim") if words else None


def _figure(label: str, value: str, style: str = "") -> Text:
    return Text.assemble((f"{label} ", "dim"), (value, style))


def _figures(snapshot: Mapping[str, Any]) -> RenderableType:
    """This second's figures, a row each for rates, the origin's health and the decisions; a narrow
    terminal wraps a row between figures, never inside one."""
    now = snapshot.get("now") or {}
    origin = now.get("origin") or {}
    stats = snapshot.get("stats") or {}
    by_outcome = now.get("by_outcome") or {}
    queue = (
        f"{stats['admission.queued']} queued, {stats.get('admission.in_flight', 0)} in"
        if "admission.queued" in stats
        else "off"
    )
    rows = [
        [
            _figure("requests/s", _number(now.get("rps")), "bold"),
            _figure("legitimate/s", _number(now.get("legit_rps")), "bold green"),
            _figure("mitigated/s", _number(now.get("mitigated_rps")), "bold red"),
            _figure("clients", _number(now.get("distinct_clients")), "bold"),
        ],
        [
            _figure("origin p50", _number(origin.get("p50"), millis)),
            _figure("p95", _number(origin.get("p95"), millis)),
            _figure("errors", _number(origin.get("error_share"), percent)),
            _figure("admission", queue),
        ],
        [Text("by decision:", style="dim")]
        + [
            Text(f"{words} {_number(by_outcome.get(name, 0))}", style="" if by_outcome.get(name) else "dim")
            for name, words in _OUTCOMES
        ],
    ]
    return Group(*(Columns(row, padding=(0, 3)) for row in rows))


def _history(snapshot: Mapping[str, Any]) -> Table:
    """The last minute: legitimate and mitigated requests/s (each on its own scale) and the mode."""
    history = list(snapshot.get("history") or [])[-SPARK_SECONDS:]
    legit = [float(point[1] or 0) for point in history]  # null: not measured (JSON has no NaN)
    mitigated = [float(point[2] or 0) for point in history]
    band = Text()
    for point in history:
        band.append("█", style=_BAND_STYLE.get(str(point[4]), "dim"))
    table = Table.grid(padding=(0, 1))
    table.add_column(style="dim", no_wrap=True)
    table.add_column(no_wrap=True)
    table.add_row(f"legit ≤{rate(max([*legit, 0.0]))}/s", _Latest(_spark(legit, "green")))
    table.add_row(f"mitigated ≤{rate(max([*mitigated, 0.0]))}/s", _Latest(_spark(mitigated, "red")))
    table.add_row("mode", _Latest(band))
    return table


def _tops(snapshot: Mapping[str, Any]) -> Table:
    """Who sends the most and what they ask for: two by two, each clipped to its column."""
    tops = snapshot.get("top") or {}
    tables = []
    for name, title in _TOPS:
        table = Table(
            title=title, title_style="bold", title_justify="left", box=None, show_header=False, expand=True
        )
        table.add_column(ratio=1, overflow="ellipsis", no_wrap=True)
        table.add_column(justify="right", no_wrap=True)
        entries = tops.get(name) or []
        for key, count in entries[:TOP_ROWS]:
            table.add_row(_plain(key), _number(count))
        if not entries:
            table.add_row(Text(_NONE, style="dim"), "")
        tables.append(table)
    grid = Table.grid(padding=(0, 3), expand=True)
    grid.add_column(ratio=1)
    grid.add_column(ratio=1)
    grid.add_row(*tables[:2])
    grid.add_row(*tables[2:])
    return grid


def _signatures(snapshot: Mapping[str, Any]) -> RenderableType:
    signatures = snapshot.get("signatures") or []
    if not signatures:
        return Text("no attack signatures", style="dim")
    table = Table(title="attack signatures", title_style="bold", title_justify="left", box=None)
    table.add_column("id", no_wrap=True)
    table.add_column("action", no_wrap=True)
    table.add_column("matches", ratio=1, overflow="fold")
    table.add_column("of attack", justify="right")
    table.add_column("of normal", justify="right")
    for sig in signatures:
        table.add_row(
            _plain(sig.get("id", "")),
            _plain(sig.get("action", "")),
            _plain(sig.get("description", ""), 120),
            _number(sig.get("coverage"), percent),
            _number(sig.get("collateral"), percent),
        )
    return table


def frame(snapshot: Mapping[str, Any], problem: str | None = None) -> RenderableType:
    """One screen of `shieldwall top` for a status snapshot; `problem` (say, the API stopped
    answering) is shown under the header, above the last snapshot seen."""
    parts: list[RenderableType] = [_header(snapshot, problem)]
    why = _why(snapshot)
    if why is not None:
        parts.append(why)
    parts += [Text(), _figures(snapshot), Text(), _history(snapshot), Text(), _tops(snapshot), Text()]
    parts.append(_signatures(snapshot))
    return Group(*parts)


# ---------------------------------------------------------------------------------------------- the loop


def watch(
    fetch: Fetch,
    console: Console,
    *,
    seconds: float | None,
    clock: Clock | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Redraw a frame once a second until `seconds` have passed (None: until Ctrl-C). A failed fetch
    keeps the last frame on screen with the problem above it, and the next second tries again."""
    clock = clock if clock is not None else SystemClock()
    started = clock.monotonic()
    snapshot: Mapping[str, Any] = {}
    problem: str | None = None
    with Live(console=console, auto_refresh=False, transient=False) as live:
        while True:
            tick = clock.monotonic()
            try:
                snapshot, problem = fetch(), None
            except FetchError as exc:
                problem = str(exc)
            live.update(frame(snapshot, problem), refresh=True)
            if seconds is not None and clock.monotonic() - started >= seconds:
                return
            sleep(max(0.0, tick + INTERVAL - clock.monotonic()))


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"shieldwall: {message}", err=True)
    sys.exit(code)


@click.command(context_settings=CONTEXT)
@click.option(
    "--url", metavar="URL", help="The admin listener, e.g. http://127.0.0.1:9180. Default: [admin] listen."
)
@click.option("--once", is_flag=True, help="Print one frame and exit (for scripts and logs).")
@click.option(
    "--seconds", metavar="N", type=click.FloatRange(min=0), help="Stop after N seconds. Default: at Ctrl-C."
)
@config_option
def top(url: str | None, once: bool, seconds: float | None, config_path: Path | None) -> None:
    """The shield at a glance in this terminal: mode, requests per second by decision, the origin's
    latency and admission queue, top sources and paths, and attack signatures, once a second, from
    the admin API. The token is read from the shield's token file ([admin] token_file, by default
    server.state_dir/admin/token), so run it as a user who may read that file."""
    settings = load_settings(config_path)
    fetch = http_fetcher(url or base_url(settings), admin_token(settings))
    console = Console()
    if once:
        try:
            snapshot = fetch()
        except FetchError as exc:
            _fail(str(exc), EXIT_BAD_INPUT if exc.refused else EXIT_UNREACHABLE)
        console.print(frame(snapshot))
        return
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how a watch usually ends
        watch(fetch, console, seconds=seconds)
