"""The access log writes Combined Log Format or JSON, and never more than its per-second budget."""

from __future__ import annotations

import json
from pathlib import Path

from shieldwall.config.schema import AccessLog as AccessLogSettings
from shieldwall.dataplane.accesslog import AccessLog, LogRecord

T0 = 1_700_000_000.0


def record(status: int = 200, ref: str | None = None) -> LogRecord:
    return LogRecord(
        client_ip="198.51.100.4",
        method=b"GET",
        target=b'/a?q="x"',
        version=b"1.1",
        status=status,
        bytes_sent=123,
        referer=b"",
        user_agent=b"curl/8",
        duration=0.0125,
        ref_id=ref,
        worker=0,
    )


def test_combined_log_format(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    log = AccessLog(AccessLogSettings(path=str(path)))
    log.record(record(429, "SW-0123456789"), T0)
    log.close()
    line = path.read_text()
    assert line == (
        '198.51.100.4 - - [14/Nov/2023:22:13:20 +0000] "GET /a?q=\\"x\\" HTTP/1.1" 429 123 "-" "curl/8" '
        "0.013 SW-0123456789 - -\n"
    )


def test_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "access.jsonl"
    log = AccessLog(AccessLogSettings(path=str(path), format="json"))
    log.record(record(), T0)
    log.close()
    entry = json.loads(path.read_text())
    assert entry["client"] == "198.51.100.4" and entry["status"] == 200 and entry["target"] == '/a?q="x"'


def test_over_budget_lines_are_counted_not_written(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    log = AccessLog(AccessLogSettings(path=str(path), max_lines_per_second=10))
    for i in range(1000):
        log.record(record(), T0 + i / 1000)  # 1000 lines within one second
    log.record(record(), T0 + 1.5)  # the next second opens: the summary of the last one is written
    log.close()
    lines = path.read_text().splitlines()
    assert len([x for x in lines if not x.startswith("#")]) == 11
    assert lines[10] == "# 2023-11-14T22:13:20Z access log over budget: skipped 990 lines"
    assert log.skipped_total == 990


def test_off_writes_nothing(tmp_path: Path) -> None:
    log = AccessLog(AccessLogSettings(path="off"))
    log.record(record(), T0)
    log.close()
    assert not log.enabled and list(tmp_path.iterdir()) == []


def test_the_deciding_rule_and_log_only_rules_are_logged(tmp_path: Path) -> None:
    path = tmp_path / "access.log"
    log = AccessLog(AccessLogSettings(path=str(path)))
    rec = record(403, "SW-0123456789")
    rec.rule, rec.logged = "no-wp", ("try-a", "try-b")
    log.record(rec, T0)
    log.close()
    assert path.read_text().endswith(" 0.013 SW-0123456789 no-wp try-a,try-b\n")
    json_path = tmp_path / "access.jsonl"
    json_log = AccessLog(AccessLogSettings(path=str(json_path), format="json"))
    json_log.record(rec, T0)
    json_log.close()
    entry = json.loads(json_path.read_text())
    assert entry["rule"] == "no-wp" and entry["log_only"] == ["try-a", "try-b"]
