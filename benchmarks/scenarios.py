"""What is measured: the load scenarios, the targets from the issue, and the checks that a run measured
what it claims (a keep-alive row full of 502s, or a rejection row where requests got through, would
give a meaningless CPU-per-request figure)."""

from __future__ import annotations

import http.client
from dataclasses import dataclass

from benchmarks.wrk import WrkResult

MIN_REJECTED_SHARE = 0.99  # of the rejection scenario's responses that must be 429 (non-2xx)


@dataclass(frozen=True, slots=True)
class Scenario:
    key: str
    title: str
    target_ratio: float | None  # shieldwall's CPU per request may be at most this many times nginx's
    headers: tuple[str, ...] = ()
    access_log: bool = False  # both proxies write a combined-format line per request to a file
    rate_limited: bool = False  # 1 request/s per IP, burst 1: nearly every request is answered 429


SCENARIOS = (
    Scenario("keepalive", "proxied GET, keep-alive", 2.0),
    Scenario("keepalive-log", "proxied GET, keep-alive, access log to a file", None, access_log=True),
    Scenario("reject", "over its limit: 429, keep-alive", 1.3, rate_limited=True),
    Scenario("close", "new connection per request (Connection: close)", 1.5, headers=("Connection: close",)),
)


def problems(scenario: Scenario, result: WrkResult) -> list[str]:
    """Why this run does not measure what the scenario says (empty when it does)."""
    found = []
    if result.requests == 0:
        return ["no response at all"]
    if scenario.rate_limited:
        if result.non2xx < MIN_REJECTED_SHARE * result.requests:
            found.append(f"only {result.non2xx} of {result.requests} responses were rejected")
    elif result.non2xx:
        found.append(f"{result.non2xx} of {result.requests} responses were not 2xx/3xx")
    if result.socket_errors:
        found.append(f"{result.socket_errors} socket errors (connect/read/write/timeout)")
    return found


def answer_and_keepalive(port: int) -> tuple[int, bool]:
    """Two GETs on one fresh connection: the second's status (the first may still be within the rate,
    which a second later refills), and whether the server left the connection open after it (a proxy
    that closes after each 429 makes the rejection scenario pay for a new connection each time)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2.0)
    try:
        for _ in range(2):
            conn.request("GET", "/")
            response = conn.getresponse()
            response.read()
            if response.will_close:
                break
        return response.status, not response.will_close
    finally:
        conn.close()
