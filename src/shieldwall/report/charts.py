"""The report's charts as inline SVG: no script, no external file or font (and no xmlns, which inline SVG
in HTML does not need), so the HTML report stays one self-contained file that prints as it shows.

However long the incident, a chart draws at most `MAX_COLUMNS` columns: neighbouring points are merged
the way the incident's series merges them (`Point.absorb`: counts summed, latency and clients the
maximum, mode the highest), so a spike is never averaged away. Coordinates are written with one decimal,
so the same incident always gives the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from html import escape
from typing import Final

from shieldwall.detector.events import Mode
from shieldwall.detector.incidents import Point
from shieldwall.report import words
from shieldwall.report.model import ReportData, rate_of

MAX_COLUMNS: Final = 600
WIDTH: Final = 720
HEIGHT: Final = 170
BAND_HEIGHT: Final = 46
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 10, 10, 22
_TIME_STEPS: Final = (5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
_MAX_TICKS: Final = 8

SERVED_COLOUR: Final = "#2e7d32"
MITIGATED_COLOUR: Final = "#c62828"
LATENCY_COLOUR: Final = "#1565c0"
CLIENTS_COLOUR: Final = "#6a1b9a"
MODE_COLOURS: Final = {Mode.NORMAL: "#dcedc8", Mode.ELEVATED: "#ffca28", Mode.UNDER_ATTACK: "#e53935"}


@dataclass(frozen=True, slots=True)
class Chart:
    key: str  # unique in the document: element ids derive from it
    title: str
    caption: str  # what to read in it, in words
    svg: str


def columns(points: Sequence[Point], limit: int = MAX_COLUMNS) -> list[Point]:
    """At most `limit` points, neighbours merged (copies: the input is left alone)."""
    size = max(1, math.ceil(len(points) / limit))
    merged = []
    for start in range(0, len(points), size):
        column = replace(points[start])
        for point in points[start + 1 : start + size]:
            column.absorb(point)
        merged.append(column)
    return merged


@dataclass(frozen=True, slots=True)
class _Frame:
    """Where a chart's time and values go on the page."""

    start: float
    end: float
    top: float  # the value at the top of the plot
    height: int = HEIGHT

    def x(self, wall: float) -> float:
        span = self.end - self.start
        return _LEFT + (wall - self.start) / span * (WIDTH - _LEFT - _RIGHT) if span > 0 else _LEFT

    def y(self, value: float) -> float:
        plot = self.height - _TOP - _BOTTOM
        return self.height - _BOTTOM - min(value, self.top) / self.top * plot

    @property
    def bottom(self) -> float:
        return self.height - _BOTTOM


def _nice_top(peak: float) -> tuple[float, float]:
    """(top, step): four gridlines at a round step (1, 2, 2.5 or 5 times a power of ten)."""
    if peak <= 0:
        return 1.0, 0.25
    magnitude = 10 ** math.floor(math.log10(peak / 4))
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * magnitude
        if step * 4 >= peak:
            return step * 4, step
    return peak, peak / 4  # not reached: factor 10 always fits


def _compact(value: float) -> str:
    """Axis labels: '800', '12k', '1.5M'."""
    for limit, suffix in ((1e6, "M"), (1e3, "k")):
        if value >= limit:
            text = f"{value / limit:.1f}".removesuffix(".0")
            return f"{text}{suffix}"
    return f"{value:g}" if value < 10 else f"{value:.0f}"


def _seconds_label(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:g} s"


def _xy(frame: _Frame, wall: float, value: float) -> str:
    return f"{frame.x(wall):.1f},{frame.y(value):.1f}"


def _middle(point: Point) -> float:
    return point.wall + point.seconds / 2


def _time_axis(frame: _Frame) -> list[str]:
    span = frame.end - frame.start
    step = next((s for s in _TIME_STEPS if span / s <= _MAX_TICKS), _TIME_STEPS[-1])
    parts = [
        f'<line class="axis" x1="{_LEFT}" y1="{frame.bottom}" x2="{WIDTH - _RIGHT}" y2="{frame.bottom}"/>'
    ]
    tick = math.ceil(frame.start / step) * step
    while tick <= frame.end:
        x = frame.x(tick)
        label = words.clock(tick, seconds=step < 60)
        parts.append(
            f'<line class="tick" x1="{x:.1f}" y1="{frame.bottom}" x2="{x:.1f}" y2="{frame.bottom + 4}"/>'
        )
        parts.append(f'<text x="{x:.1f}" y="{frame.bottom + 15}" text-anchor="middle">{label}</text>')
        tick += step
    return parts


def _value_axis(frame: _Frame, step: float, label: Callable[[float], str]) -> list[str]:
    parts = []
    for index in range(5):
        value = step * index
        y = frame.y(value)
        parts.append(f'<line class="grid" x1="{_LEFT}" y1="{y:.1f}" x2="{WIDTH - _RIGHT}" y2="{y:.1f}"/>')
        parts.append(f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{escape(label(value))}</text>')
    return parts


def _svg(key: str, title: str, description: str, body: list[str], height: int = HEIGHT) -> str:
    return (
        f'<svg viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-labelledby="{key}-title {key}-desc" class="chart">'
        f'<title id="{key}-title">{escape(title)}</title><desc id="{key}-desc">{escape(description)}</desc>'
        + "".join(body)
        + "</svg>"
    )


def _line(frame: _Frame, cols: Sequence[Point], value: Callable[[Point], float], colour: str) -> str:
    coordinates = " ".join(_xy(frame, _middle(point), value(point)) for point in cols)
    return f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{coordinates}"/>'


def _area(
    frame: _Frame,
    cols: Sequence[Point],
    low: Callable[[Point], float],
    high: Callable[[Point], float],
    colour: str,
) -> str:
    upper = [_xy(frame, _middle(point), high(point)) for point in cols]
    lower = [_xy(frame, _middle(point), low(point)) for point in reversed(cols)]
    return f'<polygon fill="{colour}" fill-opacity="0.75" stroke="none" points="{" ".join(upper + lower)}"/>'


def _frame(cols: Sequence[Point], peak: float, height: int = HEIGHT) -> tuple[_Frame, float]:
    top, step = _nice_top(peak)
    last = cols[-1]
    return _Frame(cols[0].wall, last.wall + last.seconds, top, height), step


def _rate_chart(cols: Sequence[Point]) -> Chart:
    def served(point: Point) -> float:
        return point.legit / point.seconds

    frame, step = _frame(cols, max(map(rate_of, cols)))
    body = _value_axis(frame, step, _compact) + _time_axis(frame)
    body.append(_area(frame, cols, lambda _: 0.0, served, SERVED_COLOUR))
    body.append(_area(frame, cols, served, rate_of, MITIGATED_COLOUR))
    title = "Requests per second: served vs filtered"
    description = (
        "Stacked areas: requests served (by the web server or the cache) at the bottom, requests the shield "
        "refused, rate-limited, challenged or shed on top."
    )
    caption = "Green: requests served. Red: requests filtered by the shield (refused, limited or challenged)."
    return Chart("chart-rate", title, caption, _svg("chart-rate", title, description, body))


def _served_chart(cols: Sequence[Point]) -> Chart:
    def served(point: Point) -> float:
        return point.legit / point.seconds

    frame, step = _frame(cols, max(map(served, cols)))
    body = _value_axis(frame, step, _compact) + _time_axis(frame)
    body.append(_line(frame, cols, served, SERVED_COLOUR))
    title = "Requests served per second"
    description = "Requests that reached the web server or were answered from the cache, on their own scale."
    caption = "What real visitors (and anything that passed the filters) got served, on its own scale."
    return Chart("chart-served", title, caption, _svg("chart-served", title, description, body))


def _latency_chart(cols: Sequence[Point], threshold: float | None) -> Chart:
    peak = max(*(point.latency_p95 for point in cols), threshold or 0.0)
    frame, step = _frame(cols, peak)
    body = _value_axis(frame, step, _seconds_label) + _time_axis(frame)
    caption = "How long the web server took to answer (95th percentile)."
    if threshold is not None:
        y = frame.y(threshold)
        body.append(
            f'<line class="limit" x1="{_LEFT}" y1="{y:.1f}" x2="{WIDTH - _RIGHT}" y2="{y:.1f}"/>'
            f'<text x="{WIDTH - _RIGHT - 4}" y="{y - 4:.1f}" text-anchor="end">slow above '
            f"{escape(words.millis(threshold))}</text>"
        )
        caption += f" Dashed: above {words.millis(threshold)} counts as slowed down."
    body.append(_line(frame, cols, lambda point: point.latency_p95, LATENCY_COLOUR))
    title = "Web server response time (p95)"
    description = "The origin's 95th-percentile response time per interval."
    return Chart("chart-latency", title, caption, _svg("chart-latency", title, description, body))


def _clients_chart(cols: Sequence[Point]) -> Chart:
    frame, step = _frame(cols, max(point.distinct_clients for point in cols))
    body = _value_axis(frame, step, _compact) + _time_axis(frame)
    body.append(_line(frame, cols, lambda point: point.distinct_clients, CLIENTS_COLOUR))
    title = "Distinct client addresses per second"
    description = "How many different addresses sent requests (estimated), per second."
    caption = "Different addresses seen each second: a botnet shows as a jump."
    return Chart("chart-clients", title, caption, _svg("chart-clients", title, description, body))


def _mode_band(cols: Sequence[Point]) -> Chart:
    last = cols[-1]
    frame = _Frame(cols[0].wall, last.wall + last.seconds, 1.0, BAND_HEIGHT)
    body = _time_axis(frame)
    runs: list[tuple[Mode, float, float]] = []
    for point in cols:
        if runs and runs[-1][0] is point.mode:
            runs[-1] = (point.mode, runs[-1][1], point.wall + point.seconds)
        else:
            runs.append((point.mode, point.wall, point.wall + point.seconds))
    for mode, start, end in runs:
        x0, x1 = frame.x(start), frame.x(end)
        body.append(
            f'<rect x="{x0:.1f}" y="{_TOP}" width="{max(x1 - x0, 0.5):.1f}" height="{frame.bottom - _TOP}" '
            f'fill="{MODE_COLOURS[mode]}"><title>{escape(words.MODE_WORDS[mode])}</title></rect>'
        )
    title = "Shield mode"
    description = "The shield's mode over time: " + ", ".join(
        f"{words.MODE_WORDS[mode]} {colour}" for mode, colour in MODE_COLOURS.items()
    )
    caption = "Light green: normal. Amber: elevated (on guard). Red: under attack."
    return Chart("chart-mode", title, caption, _svg("chart-mode", title, description, body, BAND_HEIGHT))


def charts(data: ReportData) -> tuple[Chart, ...]:
    """The report's charts, in reading order; none when the incident has no series."""
    if not data.points:
        return ()
    cols = columns(data.points)
    return (
        _rate_chart(cols),
        _mode_band(cols),
        _served_chart(cols),
        _latency_chart(cols, data.impact.slow_threshold),
        _clients_chart(cols),
    )
