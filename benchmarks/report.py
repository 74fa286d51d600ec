"""Turning measured runs into the table `make bench` prints: medians per proxy and scenario, the ratio of
shieldwall's CPU per request to nginx's, and whether the issue's target is met. Markdown, so the output
pastes into docs/performance.md as it is."""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from benchmarks.procstat import CpuTime
from benchmarks.scenarios import Scenario
from benchmarks.wrk import WrkResult

NGINX, SHIELDWALL = "nginx", "shieldwall"
BARE = "bare uvloop+httptools"  # benchmarks.bare_proxy: the stack without shieldwall's features
# Others' use of the proxy CPU, as a share of the proxy's own CPU time, worth a warning: the per-CPU
# counter is tick-sampled and disagrees with the exact per-process ones by a few percent either way.
OTHER_WORK_WARNING = 0.10


@dataclass(frozen=True, slots=True)
class Sample:
    """One measured wrk run against one proxy."""

    cpu: CpuTime  # of all the proxy's processes during the run
    other_seconds: float  # busy time of the proxy's CPU during the run outside the proxy's processes
    wrk: WrkResult
    problems: tuple[str, ...]  # why the run may not measure what it should (empty: it does)

    @property
    def cpu_seconds(self) -> float:
        return self.cpu.total

    @property
    def cpu_us_per_request(self) -> float:
        return self.cpu_seconds / self.wrk.requests * 1e6 if self.wrk.requests else float("nan")


@dataclass
class Row:
    """One proxy in one scenario."""

    scenario: Scenario
    proxy: str
    samples: list[Sample] = field(default_factory=list)
    peak_rss_kib: int = 0
    note: str = ""  # a fact found while measuring, printed under the table

    @property
    def cpu_us(self) -> float:
        return statistics.median(s.cpu_us_per_request for s in self.samples)

    @property
    def cpu_us_range(self) -> str:
        """Lowest and highest run: a wide range says the machine was busy with something else."""
        values = [s.cpu_us_per_request for s in self.samples]
        return f"{min(values):.0f}-{max(values):.0f}"

    @property
    def kernel_share(self) -> float:
        return statistics.median(s.cpu.system / s.cpu_seconds for s in self.samples if s.cpu_seconds)

    @property
    def rps(self) -> float:
        return statistics.median(s.wrk.rps for s in self.samples)

    @property
    def p99_ms(self) -> float:
        return statistics.median(s.wrk.p99_ms for s in self.samples)

    @property
    def problems(self) -> list[str]:
        found = [f"run {i + 1}: {p}" for i, s in enumerate(self.samples) for p in s.problems]
        other = statistics.median(s.other_seconds / s.cpu_seconds for s in self.samples if s.cpu_seconds)
        if other > OTHER_WORK_WARNING:
            found.append(
                f"something else kept the proxy CPU busy for {other:.0%} of the proxy's own CPU time "
                "(other programs, or kernel work charged to no process): the figure may be off"
            )
        return found


def ratio_cell(row: Row, baseline: Row | None) -> tuple[str, str]:
    """(ratio to nginx, target verdict) for a shieldwall or bare row; blanks for nginx's own rows. The
    bare proxy's verdict says whether the stack by itself, with no feature at all, is within the target."""
    if row.proxy == NGINX or baseline is None:
        return "", ""
    ratio = row.cpu_us / baseline.cpu_us
    target = row.scenario.target_ratio
    if target is None:
        return f"{ratio:.2f}", ""
    verdict = f"≤ {target:g}: {'met' if ratio <= target else 'NOT met'}"
    return f"{ratio:.2f}", f"{verdict} (floor)" if row.proxy == BARE else verdict


def format_table(rows: list[Row], runs: int) -> str:
    header = (
        "| scenario | proxy | CPU µs/request | runs' range | in kernel | vs nginx | target | requests/s "
        "| p99 ms | peak RSS MiB |\n"
        "|---|---|---:|---:|---:|---:|---|---:|---:|---:|\n"
    )
    baselines = {row.scenario.key: row for row in rows if row.proxy == NGINX}
    lines = []
    for row in rows:
        title = row.scenario.title if row.proxy == NGINX else ""
        ratio, verdict = ratio_cell(row, baselines.get(row.scenario.key))
        flag = " (!)" if row.problems else ""
        lines.append(
            f"| {title} | {row.proxy} | {row.cpu_us:.1f}{flag} | {row.cpu_us_range} | "
            f"{row.kernel_share:.0%} | {ratio} | {verdict} | {row.rps:,.0f} | {row.p99_ms:.2f} | "
            f"{row.peak_rss_kib / 1024:.1f} |"
        )
    lines.append(_rss_line(rows))
    notes = [f"Medians of {runs} runs. (!) marks a row with a problem listed below."]
    notes += _floor_lines(rows)
    for row in rows:
        notes += [f"- {row.scenario.key} / {row.proxy}: {p}" for p in row.problems]
    return header + "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"


def _floor_lines(rows: list[Row]) -> list[str]:
    """What shieldwall's features cost over the bare stack, per scenario that ran the bare proxy."""
    by_key = {(row.scenario.key, row.proxy): row for row in rows}
    lines = []
    for row in rows:
        shield = by_key.get((row.scenario.key, SHIELDWALL))
        if row.proxy == BARE and shield is not None:
            lines.append(
                f"- {row.scenario.key}: shieldwall {shield.cpu_us / row.cpu_us:.2f}x the bare proxy "
                f"({shield.cpu_us - row.cpu_us:+.1f} µs/request for every feature)"
            )
    return lines


def _rss_line(rows: list[Row]) -> str:
    """The largest peak RSS each proxy reached in any scenario, and shieldwall's as a multiple of nginx's."""
    peak = {
        proxy: max((r.peak_rss_kib for r in rows if r.proxy == proxy), default=0)
        for proxy in (NGINX, SHIELDWALL)
    }
    ratio = f"{peak[SHIELDWALL] / peak[NGINX]:.1f}" if peak[NGINX] and peak[SHIELDWALL] else ""
    return (
        f"| peak RSS, largest over the scenarios | nginx {peak[NGINX] / 1024:.1f} MiB, "
        f"shieldwall {peak[SHIELDWALL] / 1024:.1f} MiB | | | | {ratio} | | | | |"
    )
