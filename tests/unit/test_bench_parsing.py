"""The benchmark's parsers of /proc and wrk output: a wrong parse would silently give wrong figures.
(The benchmark itself is timed and never runs in `make test`.)"""

from __future__ import annotations

import pytest
from benchmarks.procstat import (
    CLOCK_TICKS_PER_SECOND,
    CpuTime,
    ProcessSetChanged,
    cpu_time_between,
    parse_cpu_busy_ticks,
    parse_stat,
)
from benchmarks.scenarios import SCENARIOS, problems
from benchmarks.wrk import DONE_HOOK, MARKER, WrkResult, parse_wrk_output

from shieldwall.drill.processes import parse_status_kib

# A real /proc/PID/stat line, with the command name changed to one holding spaces and parentheses.
STAT = (
    "17541 (nginx: (worker) x) S 17467 17467 11227 0 -1 4194304 102 0 0 0 731 52 0 0 20 0 1 0 88799 "
    "3133440 387 18446744073709551615 93850768912384 93850768932265 140729689594256 0 0 0 0 0 0 0 0 0 17 "
    "0 0 0 0 0 0 93850768948272 93850768949888 93851814723584 140729689598679 140729689598699 "
    "140729689598699 140729689599979 0\n"
)

STATUS = "Name:\tnginx\nVmPeak:\t   12000 kB\nVmHWM:\t    2180 kB\nVmRSS:\t    2000 kB\nThreads:\t1\n"

# wrk 4.1.0's real output for a run with --latency and the done hook (non-2xx: a 429 location).
WRK_OUTPUT = """Running 1s test @ http://127.0.0.1:18182/x
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   408.23us    0.85ms   5.52ms   87.41%
    Req/Sec    37.47k    11.16k   58.00k    81.82%
  Latency Distribution
     50%   53.00us
     75%   70.00us
     90%    1.58ms
     99%    4.03ms
  40959 requests in 1.10s, 12.97MB read
  Non-2xx or 3xx responses: 40959
Requests/sec:  37210.49
Transfer/sec:     11.78MB
SHIELDWALL-BENCH requests=40959 duration_us=1100738 connect=0 read=3 write=1 timeout=2 non2xx=40959 \
p99_us=4032
"""


def test_parse_stat_counts_fields_after_the_last_parenthesis():
    stat = parse_stat(STAT)
    assert (stat.pid, stat.state, stat.session) == (17541, "S", 11227)
    assert (stat.utime, stat.stime, stat.cpu_ticks) == (731, 52, 783)


def test_parse_stat_refuses_a_truncated_line():
    with pytest.raises(ValueError, match="fields"):
        parse_stat("17541 (nginx) S 1 2 3 4 5")
    with pytest.raises(ValueError, match="not a /proc"):
        parse_stat("garbage")


def test_parse_status_kib_finds_the_exact_key():
    assert parse_status_kib(STATUS, "VmHWM") == 2180
    assert parse_status_kib(STATUS, "VmRSS") == 2000
    with pytest.raises(KeyError):
        parse_status_kib(STATUS, "VmSwap")


PROC_STAT = (
    "cpu  33831 0 13777 139939 499 0 2911 58 0 0\n"
    "cpu0 12615 0 7335 74487 28 0 1090 26 0 0\n"
    "cpu1 21216 1 6441 65452 470 3 1821 31 0 0\n"
    "cpu10 9 9 9 9 9 9 9 9 0 0\nintr 1 2 3\n"
)


def test_parse_cpu_busy_ticks_counts_user_nice_system_irq_softirq_of_that_cpu_only():
    assert parse_cpu_busy_ticks(PROC_STAT, 1) == 21216 + 1 + 6441 + 3 + 1821
    assert parse_cpu_busy_ticks(PROC_STAT, 0) == 12615 + 7335 + 1090
    with pytest.raises(KeyError):
        parse_cpu_busy_ticks(PROC_STAT, 2)


def test_cpu_time_between_sums_user_and_system_over_all_processes_in_seconds():
    tick = CLOCK_TICKS_PER_SECOND
    before = {10: (100, 7), 11: (5, 0)}
    after = {10: (100 + tick, 7 + 2 * tick), 11: (5 + tick, 0 + tick)}
    assert cpu_time_between(before, after) == CpuTime(user=2.0, system=3.0)
    assert cpu_time_between(before, after).total == 5.0


def test_cpu_time_between_refuses_a_changed_process_set():
    with pytest.raises(ProcessSetChanged):
        cpu_time_between({10: (1, 1), 11: (1, 1)}, {10: (2, 2), 12: (1, 1)})


def test_parse_wrk_output_reads_the_done_hook_line_exactly():
    result = parse_wrk_output(WRK_OUTPUT)
    assert result == WrkResult(
        requests=40959, duration_s=1.100738, socket_errors=6, non2xx=40959, p99_ms=4.032
    )
    assert result.rps == pytest.approx(40959 / 1.100738)


def test_the_done_hook_prints_every_field_the_parser_needs():
    line = WRK_OUTPUT.splitlines()[-1]
    for item in line.split()[1:]:
        assert item.split("=")[0] in DONE_HOOK


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (WRK_OUTPUT.replace(MARKER, "OTHER"), "no SHIELDWALL-BENCH line"),
        (WRK_OUTPUT.replace(" p99_us=4032", ""), "lacks p99_us"),
        (WRK_OUTPUT.replace("read=3", "read=-3"), "unexpected item"),
        (WRK_OUTPUT.replace("read=3", "bogus=3"), "unexpected item"),
    ],
)
def test_parse_wrk_output_refuses_incomplete_results(text, error):
    with pytest.raises(ValueError, match=error):
        parse_wrk_output(text)


def test_problems_flag_runs_that_do_not_measure_their_scenario():
    by_key = {s.key: s for s in SCENARIOS}
    ok = WrkResult(requests=1000, duration_s=5.0, socket_errors=0, non2xx=0, p99_ms=1.0)
    assert problems(by_key["keepalive"], ok) == []
    assert problems(by_key["reject"], ok) == ["only 0 of 1000 responses were rejected"]
    rejected = WrkResult(requests=1000, duration_s=5.0, socket_errors=0, non2xx=995, p99_ms=1.0)
    assert problems(by_key["reject"], rejected) == []
    assert problems(by_key["keepalive"], rejected) == ["995 of 1000 responses were not 2xx/3xx"]
