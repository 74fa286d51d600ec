"""The table `make bench` prints: ratios to nginx, the targets' verdicts, and the bare proxy's floor."""

from __future__ import annotations

from benchmarks.procstat import CpuTime
from benchmarks.report import BARE, NGINX, SHIELDWALL, Row, Sample, format_table, ratio_cell
from benchmarks.scenarios import SCENARIOS
from benchmarks.wrk import WrkResult

REJECT = next(s for s in SCENARIOS if s.key == "reject")  # target: 1.3x nginx


def row(proxy: str, us_per_request: float, requests: int = 100_000) -> Row:
    spent = us_per_request * requests / 1e6
    wrk = WrkResult(requests=requests, duration_s=5.0, socket_errors=0, non2xx=requests, p99_ms=1.0)
    return Row(REJECT, proxy, [Sample(CpuTime(spent / 2, spent / 2), 0.0, wrk, ())])


def test_ratio_cell_judges_shieldwall_and_marks_the_bare_proxys_verdict_as_the_floor() -> None:
    nginx = row(NGINX, 10.0)
    assert ratio_cell(nginx, nginx) == ("", "")
    assert ratio_cell(row(SHIELDWALL, 25.0), nginx) == ("2.50", "≤ 1.3: NOT met")
    assert ratio_cell(row(BARE, 12.0), nginx) == ("1.20", "≤ 1.3: met (floor)")
    assert ratio_cell(row(BARE, 14.0), nginx) == ("1.40", "≤ 1.3: NOT met (floor)")


def test_the_table_says_what_the_features_cost_over_the_bare_stack() -> None:
    table = format_table([row(NGINX, 10.0), row(SHIELDWALL, 30.0), row(BARE, 12.0)], runs=1)
    assert "| bare uvloop+httptools | 12.0 |" in table
    assert "- reject: shieldwall 2.50x the bare proxy (+18.0 µs/request for every feature)" in table


def test_without_the_bare_proxy_no_floor_line_is_printed() -> None:
    table = format_table([row(NGINX, 10.0), row(SHIELDWALL, 30.0)], runs=1)
    assert "bare proxy" not in table
