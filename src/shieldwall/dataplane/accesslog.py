"""Access log in Combined Log Format or JSON lines, with a per-second line budget. A combined line
ends with four fields of our own: duration in seconds, reference ID, the rule that refused the request,
and the log-only rules that would have refused it ("-" when none).

Under a flood, writing one line per request could become what takes the shield down, so at most
`max_lines_per_second` lines are written each second; the rest are counted and a summary line says how many
were skipped. Lines are buffered and written at most a few times a second.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass

from shieldwall.config.schema import AccessLog as AccessLogSettings

_FLUSH_BYTES = 64 * 1024


@dataclass(slots=True)
class LogRecord:
    client_ip: str
    method: bytes
    target: bytes
    version: bytes
    status: int
    bytes_sent: int
    referer: bytes
    user_agent: bytes
    duration: float
    ref_id: str | None
    worker: int
    rule: str | None = None  # the rule that refused the request
    logged: tuple[str, ...] = ()  # log-only rules that would have refused it
    cache: str | None = None  # what the cache did: hit, stale, miss, refresh, coalesced, bypass:REASON


def _clf_quote(value: bytes) -> str:
    text = value.decode("latin-1")
    return text.replace("\\", "\\\\").replace('"', '\\"') if text else "-"


class AccessLog:
    def __init__(self, settings: AccessLogSettings) -> None:
        self.enabled = settings.path != "off"
        self.json = settings.format == "json"
        self.budget = settings.max_lines_per_second or None
        self._fd = 2
        self._owns_fd = False
        if self.enabled and settings.path != "-":
            self._fd = os.open(settings.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            self._owns_fd = True
        self._buffer: list[str] = []
        self._buffered = 0
        self._second = 0
        self._stamp = ""  # the current second, formatted once per second rather than once per line
        self._written_this_second = 0
        self.skipped_total = 0
        self._skipped_this_second = 0

    def record(self, rec: LogRecord, now_wall: float) -> None:
        if not self.enabled:
            return
        second = int(now_wall)
        if second != self._second:
            self._roll(second)
        if self.budget is not None and self._written_this_second >= self.budget:
            self._skipped_this_second += 1
            self.skipped_total += 1
            return
        self._written_this_second += 1
        line = self._format(rec)
        self._buffer.append(line)
        self._buffered += len(line)
        if self._buffered >= _FLUSH_BYTES:
            self.flush()

    def _roll(self, second: int) -> None:
        if self._skipped_this_second:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self._second))
            if self.json:
                line = json.dumps(
                    {"time": stamp, "event": "log_sampled", "skipped": self._skipped_this_second}
                )
            else:
                line = f"# {stamp} access log over budget: skipped {self._skipped_this_second} lines"
            self._buffer.append(line + "\n")
        self._second = second
        self._written_this_second = 0
        self._skipped_this_second = 0
        fmt = "%Y-%m-%dT%H:%M:%SZ" if self.json else "%d/%b/%Y:%H:%M:%S +0000"
        self._stamp = time.strftime(fmt, time.gmtime(second))

    def _format(self, rec: LogRecord) -> str:
        if self.json:
            return (
                json.dumps(
                    {
                        "time": self._stamp,
                        "client": rec.client_ip,
                        "method": rec.method.decode("latin-1"),
                        "target": rec.target.decode("latin-1"),
                        "version": rec.version.decode("latin-1"),
                        "status": rec.status,
                        "bytes": rec.bytes_sent,
                        "referer": rec.referer.decode("latin-1"),
                        "user_agent": rec.user_agent.decode("latin-1"),
                        "duration_ms": round(rec.duration * 1000, 3),
                        "ref": rec.ref_id,
                        "worker": rec.worker,
                        "rule": rec.rule,
                        "log_only": list(rec.logged),
                        "cache": rec.cache,
                    }
                )
                + "\n"
            )
        stamp = self._stamp
        request = _clf_quote(b"%s %s HTTP/%s" % (rec.method, rec.target, rec.version))
        return (
            f'{rec.client_ip} - - [{stamp}] "{request}" {rec.status} {rec.bytes_sent} '
            f'"{_clf_quote(rec.referer)}" "{_clf_quote(rec.user_agent)}" '
            f"{rec.duration:.3f} {rec.ref_id or '-'} {rec.rule or '-'} {','.join(rec.logged) or '-'}\n"
        )

    def flush(self) -> None:
        if not self._buffer:
            return
        data = "".join(self._buffer).encode("utf-8", "replace")
        self._buffer.clear()
        self._buffered = 0
        try:
            os.write(self._fd, data)
        except BlockingIOError:
            self.skipped_total += data.count(b"\n")  # a stuck log reader never blocks the data plane
        except OSError as exc:
            print(f"shieldwall: access log write failed: {exc}", file=sys.stderr)

    def close(self) -> None:
        self._roll(0)
        self.flush()
        if self._owns_fd:
            os.close(self._fd)
