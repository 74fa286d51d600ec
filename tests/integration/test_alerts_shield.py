"""Alerts from a real shield: an operator's pin through the CLI reaches a webhook on loopback as the
"opened" and "pinned" alerts (one each, the mode change they caused folded in), and the unpin as
"unpinned"; a second webhook that never answers changes none of it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.integration


class Sink(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, answer: bool) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answer = answer
        self.posts: list[dict[str, Any]] = []
        self.release = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"


class _Handler(BaseHTTPRequestHandler):
    server: Sink

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.posts.append(json.loads(body))
        if not self.server.answer:
            self.server.release.wait(30)
            return
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def sinks() -> Iterator[tuple[Sink, Sink]]:
    answering, hanging = Sink(answer=True), Sink(answer=False)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (answering, hanging)]
    for thread in threads:
        thread.start()
    yield answering, hanging
    hanging.release.set()
    for sink in (answering, hanging):
        sink.shutdown()
        sink.server_close()


def wait_for_kinds(sink: Sink, kinds: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while [post["kind"] for post in sink.posts] != kinds:
        assert time.monotonic() < deadline, f"got {[post['kind'] for post in sink.posts]}, wanted {kinds}"
        time.sleep(0.1)


def test_an_operator_pin_alerts_through_a_webhook(
    start_shield: Callable[..., Any], tmp_path: Path, sinks: tuple[Sink, Sink]
) -> None:
    answering, hanging = sinks
    alerts = {
        "name": "drill.example.org",
        "timeout": 1.0,
        "retries": 0,
        "webhooks": [{"url": hanging.url}, {"url": answering.url}],
    }
    start_shield({"server": {"state_dir": str(tmp_path / "state")}, "alerts": alerts})
    config = next(tmp_path.glob("shield-*.toml"))
    cli = [sys.executable, "-m", "shieldwall", "mode"]
    pin = [*cli, "pin", "under_attack", "--for", "10m", "--config", str(config)]
    done = subprocess.run(pin, check=False, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr

    wait_for_kinds(answering, ["opened", "pinned"], 15)
    opened, pinned = answering.posts
    assert opened["schema"] == "shieldwall.alert/1" and opened["shield"] == "drill.example.org"
    assert (opened["new_mode"], opened["severity"]) == ("under_attack", "critical")
    assert opened["incident"] == pinned["incident"] is not None
    assert re.match(r"pinned under_attack for 59\d s: pinned by ", pinned["reason"])

    subprocess.run([*cli, "unpin", "--config", str(config)], check=True, capture_output=True, timeout=30)
    wait_for_kinds(answering, ["opened", "pinned", "unpinned"], 15)
    assert answering.posts[2]["new_mode"] == "normal"
    assert hanging.posts  # it was asked, and its silence held up nobody
    [log] = tmp_path.glob("shield-*.stderr")
    assert "alerts go to webhook 0 (127.0.0.1), webhook 1 (127.0.0.1)" in log.read_text()
    assert "/hook" not in log.read_text()  # webhook URLs are secrets: only hosts are logged
