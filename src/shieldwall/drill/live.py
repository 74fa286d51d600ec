"""What a running drill shows as it goes: one `Tick` every mark (half a second), drawn by a view.

`RichView` redraws one panel in place (rates, mode, the phase and its time left, the last events) when
stdout is a terminal and `rich` is installed; `PlainView` prints one line every few seconds, and a line
at once for each event (a phase starting, the mode changing, a signature mined), which is what tests,
CI and a redirected `make demo` see. Both only format: the drill computes every figure.
"""

from __future__ import annotations

import sys
from collections import deque
from dataclasses import dataclass
from typing import Any, Final, Protocol, TextIO

PLAIN_EVERY: Final = 2.0  # seconds between two plain status lines
EVENTS_SHOWN: Final = 8


@dataclass(frozen=True)
class Tick:
    """The drill at one instant; rates are per second over the last interval between two marks."""

    setup: str
    phase: str  # "before", "during", "after"
    elapsed: float  # seconds since the drill started
    phase_left: float
    mode: str | None  # the shield's mode; None where there is no shield to ask
    signatures: int
    legit_rps: float
    legit_success: float | None
    legit_p95_ms: float | None
    attack_rps: float
    origin_legit_rps: float | None
    origin_attack_rps: float | None
    donations: int  # successful POST /donate so far


class View(Protocol):
    def event(self, text: str) -> None: ...

    def tick(self, tick: Tick) -> None: ...

    def close(self) -> None: ...


def _rate(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}/s"


def _share(value: float | None) -> str:
    return "—" if value is None else f"{value * 100:.1f} %"


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f} ms"


def status_line(tick: Tick) -> str:
    """One line of the plain view."""
    mode = "" if tick.mode is None else f" mode={tick.mode}"
    return (
        f"[{tick.elapsed:5.1f}s {tick.setup} {tick.phase} {tick.phase_left:4.0f}s left]{mode}"
        f" legit {_rate(tick.legit_rps)} ok {_share(tick.legit_success)} p95 {_ms(tick.legit_p95_ms)}"
        f" | attack {_rate(tick.attack_rps)} → origin {_rate(tick.origin_attack_rps)}"
        f" | donations {tick.donations}"
    )


class PlainView:
    """Lines of text, for logs and pipes."""

    def __init__(self, out: TextIO, every: float = PLAIN_EVERY) -> None:
        self.out = out
        self.every = every
        self._last: float | None = None

    def event(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def tick(self, tick: Tick) -> None:
        if self._last is None or tick.elapsed - self._last >= self.every:
            self._last = tick.elapsed
            print(status_line(tick), file=self.out, flush=True)

    def close(self) -> None:
        self.out.flush()


class RichView:
    """A panel redrawn in place, for a terminal."""

    def __init__(self, out: TextIO) -> None:
        from rich.console import Console  # noqa: PLC0415 (optional: only on a terminal)
        from rich.live import Live  # noqa: PLC0415

        self._console = Console(file=out)
        self._events: deque[str] = deque(maxlen=EVENTS_SHOWN)
        self._tick: Tick | None = None
        self._live = Live(self._render(), console=self._console, refresh_per_second=4, transient=False)
        self._live.start()

    def event(self, text: str) -> None:
        self._events.append(text)
        self._live.update(self._render())

    def tick(self, tick: Tick) -> None:
        self._tick = tick
        self._live.update(self._render())

    def close(self) -> None:
        self._live.stop()

    def _render(self) -> Any:
        from rich.console import Group  # noqa: PLC0415
        from rich.panel import Panel  # noqa: PLC0415
        from rich.table import Table  # noqa: PLC0415
        from rich.text import Text  # noqa: PLC0415

        tick = self._tick
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold")
        table.add_column()
        if tick is None:
            table.add_row("starting", "")
        else:
            colour = {"normal": "green", "elevated": "yellow", "under_attack": "bold red"}.get(
                tick.mode or ""
            )
            mode = Text(tick.mode or "— (no shield)", style=colour or "")
            table.add_row("setup", tick.setup)
            table.add_row("phase", f"{tick.phase} ({tick.phase_left:.0f} s left, {tick.elapsed:.0f} s in)")
            table.add_row("mode", mode)
            table.add_row("signatures mined", str(tick.signatures))
            table.add_row(
                "visitors",
                f"{_rate(tick.legit_rps)}, {_share(tick.legit_success)} served, p95 {_ms(tick.legit_p95_ms)}",
            )
            table.add_row("donations made", str(tick.donations))
            table.add_row("attack sent", _rate(tick.attack_rps))
            table.add_row(
                "at the origin",
                f"attack {_rate(tick.origin_attack_rps)}, visitors {_rate(tick.origin_legit_rps)}",
            )
        events = Text("\n".join(self._events) or "—")
        return Group(Panel(table, title="shieldwall drill"), Panel(events, title="events"))


def make_view(out: TextIO | None = None, *, fancy: bool | None = None) -> View:
    """A RichView on a terminal (when rich is installed), else a PlainView; `fancy` forces either."""
    out = sys.stdout if out is None else out
    if fancy is None:
        fancy = out.isatty()
    if fancy:
        try:
            return RichView(out)
        except ImportError:
            pass
    return PlainView(out)
