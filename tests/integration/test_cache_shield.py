"""The cache through the real proxy and the real origin: many concurrent requests for one page reach the
origin once, and a stored copy answers when the origin is gone."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest

from helpers import procs
from helpers.rawhttp import Connection, Response, get

pytestmark = pytest.mark.integration

CACHE_ON = {"cache": {"enabled": True}}


def test_concurrent_requests_for_one_page_reach_the_origin_once(start_shield, origin) -> None:
    shield = start_shield(CACHE_ON)
    page = f"/cacheable?id={uuid.uuid4().hex}&max_age=60&ms=500"
    visitors = 50
    start = threading.Barrier(visitors)
    answers: list[Response] = []

    def visit() -> None:
        with Connection(shield.address, timeout=10) as conn:
            start.wait(5)
            answers.append(conn.request("GET", page))

    threads = [threading.Thread(target=visit) for _ in range(visitors)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    assert len(answers) == visitors and all(answer.status == 200 for answer in answers)
    assert {answer.json()["hits"] for answer in answers} == {1}, "every answer is the origin's first"
    assert sum(answer.header("X-Cache") == "HIT" for answer in answers) == visitors - 1
    direct = get(origin.address, page.replace("ms=500", "ms=0"))
    assert direct.json()["hits"] == 2, "the origin saw one request through the shield, and this one"


def test_a_stored_copy_answers_when_the_origin_is_gone(start_shield, tmp_path: Path) -> None:
    own_origin = procs.start_origin(tmp_path)
    try:
        shield = start_shield(CACHE_ON, upstream=own_origin.url)
        first = get(shield.address, "/cacheable?id=gone&max_age=1")
        assert first.status == 200 and first.header("X-Cache") is None
    finally:
        procs.stop(own_origin)
    time.sleep(1.2)  # past its freshness, within the default stale_if_error
    with Connection(shield.address, timeout=10) as conn:
        stale = conn.request("GET", "/cacheable?id=gone&max_age=1")
        assert stale.status == 200 and stale.header("X-Cache") == "STALE"
        assert stale.json() == first.json()
        assert int(stale.header("Age") or 0) >= 1
        never_stored = conn.request("GET", "/cacheable?id=other&max_age=1")
    assert never_stored.status == 502, "nothing stored for that page: the shield's error page"
