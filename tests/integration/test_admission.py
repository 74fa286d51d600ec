"""Admission control through the real proxy and the real origin: with one request allowed at the
origin at once, a critical route waits its turn and is served, while a normal request whose wait
runs out gets the 503 page with Retry-After."""

from __future__ import annotations

import threading
import time

import pytest

from helpers.rawhttp import Connection, Response

pytestmark = pytest.mark.integration


def request_in_thread(address: tuple[str, int], target: str, out: dict[str, Response]) -> threading.Thread:
    def run() -> None:
        with Connection(address, timeout=10) as conn:
            out[target] = conn.request("GET", target)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_critical_requests_wait_their_turn_and_normal_ones_are_shed(start_shield) -> None:
    shield = start_shield(
        {
            "admission": {
                "enabled": True,
                "fixed_limit": 1,
                "critical_paths": ["/echo"],
                "queue_timeout": {"normal": 0.5},
            }
        }
    )
    answers: dict[str, Response] = {}
    busy = request_in_thread(shield.address, "/slow?ms=2500", answers)
    time.sleep(0.5)  # the slow request holds the origin's one slot
    started = time.monotonic()
    waiting = [request_in_thread(shield.address, target, answers) for target in ("/hello", "/echo")]
    for thread in (busy, *waiting):
        thread.join(15)
    assert answers["/slow?ms=2500"].status == 200
    shed = answers["/hello"]
    assert shed.status == 503, "a normal request that waited past its deadline is shed"
    assert shed.header("Retry-After") is not None
    assert (shed.header("X-Shieldwall-Ref") or "").startswith("SW-")
    assert answers["/echo"].status == 200, "the critical request waited for the slot and was served"
    assert time.monotonic() - started >= 1.5, "it was served only once the slow request had finished"
