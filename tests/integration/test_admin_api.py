"""The admin API of a real `shieldwall run`, on its own loopback port, served by the control process:
the status with the token and 401 without; every write route (enumerated from the served OpenAPI
document, so a new one is covered the day it is added) refuses a request without the token; a ban made
through the API refuses that client at the shield within about a second; a pin changes the mode the
workers apply; /metrics parses; a reload reaches the supervisor."""

from __future__ import annotations

import json
import socket
import time
import urllib.error
import urllib.request
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from helpers.rawhttp import Connection
from shieldwall.drill.processes import accepts, free_port

pytestmark = pytest.mark.integration

WRITE_METHODS = {"post", "put", "patch", "delete"}


class Admin:
    def __init__(self, port: int, token: str) -> None:
        self.base = f"http://127.0.0.1:{port}"
        self.token = token

    def call(
        self, method: str, path: str, body: Any = None, *, token: str | None = "default"
    ) -> tuple[int, Message, bytes]:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        if token == "default":
            token = self.token
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.headers, error.read()

    def json(self, method: str, path: str, body: Any = None) -> Any:
        status, _, data = self.call(method, path, body)
        assert 200 <= status < 300, (method, path, status, data)
        return json.loads(data)


@pytest.fixture(scope="module")
def shield(start_module_shield, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Admin, Path]:
    state_dir = tmp_path_factory.mktemp("admin") / "state"
    port = free_port()
    proc = start_module_shield(
        {
            "server": {"state_dir": str(state_dir)},
            "admin": {"enabled": True, "listen": f"127.0.0.1:{port}"},
            "detector": {"warmup": 0, "hold": 2.0},
        }
    )
    proc.wait_until(lambda: accepts("127.0.0.1", port), 20, f"the admin listener on port {port}")
    token_file = state_dir / "admin" / "token"
    assert token_file.stat().st_mode & 0o777 == 0o600
    admin = Admin(port, token_file.read_text().strip())
    proc.wait_until(lambda: "wall" in admin.json("GET", "/api/v1/status"), 10, "a first status snapshot")
    return proc, admin, state_dir


def get_status_code(address: tuple[str, int], source: str) -> int | None:
    """The status of a GET from `source`, or None when the shield refuses the connection."""
    try:
        sock = socket.create_connection(address, timeout=3, source_address=(source, 0))
        with Connection.over(sock) as conn:
            return conn.request("GET", "/hello").status
    except (OSError, ConnectionError):
        return None


def wait_for(condition: Any, timeout: float, what: str) -> float:
    started = time.monotonic()
    while not condition():
        assert time.monotonic() - started < timeout, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.05)
    return time.monotonic() - started


def test_status_needs_the_token(shield: tuple[Any, Admin, Path]) -> None:
    _, admin, _ = shield
    status = admin.json("GET", "/api/v1/status")
    assert status["mode"] in ("normal", "elevated", "under_attack")
    assert status["now"]["workers"] == 1
    code, headers, body = admin.call("GET", "/api/v1/status", token=None)
    assert code == 401
    assert headers["WWW-Authenticate"] == "Bearer"
    assert "error" in json.loads(body)
    assert admin.call("GET", "/api/v1/status", token="not-the-token")[0] == 401


def test_every_write_route_refuses_a_request_without_the_token(shield: tuple[Any, Admin, Path]) -> None:
    _, admin, state_dir = shield
    status, _, body = admin.call("GET", "/openapi.json", token=None)
    assert status == 200
    document = json.loads(body)
    writes = [
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
        if method in WRITE_METHODS
    ]
    assert len(writes) >= 8, writes  # bans add/remove, mode pin/unpin, signatures x3, reload
    for method, path in writes:
        filled = path.replace("{target}", "203.0.113.99").replace("{signature_id}", "sig-x")
        assert "{" not in filled, f"fill in the path parameters of {path} here"
        for token in (None, "wrong-token-" + "x" * 32):
            code, _, reply = admin.call(
                method, filled, {"target": "203.0.113.99", "mode": "elevated"}, token=token
            )
            assert code == 401, (method, path, code, reply)
    assert all(ban["target"] != "203.0.113.99" for ban in admin.json("GET", "/api/v1/bans"))
    assert not (state_dir / "control" / "pin.json").exists()


def test_a_ban_through_the_api_refuses_the_client_within_a_second(shield: tuple[Any, Admin, Path]) -> None:
    proc, admin, _ = shield
    assert get_status_code(proc.address, "127.0.8.1") == 200
    added = admin.json("POST", "/api/v1/bans", {"target": "127.0.8.1", "duration": "10m", "reason": "test"})
    assert added["target"] == "127.0.8.1"
    took = wait_for(
        lambda: get_status_code(proc.address, "127.0.8.1") is None, 3, "the banned client refused"
    )
    assert took < 1.5, f"the ban took {took:.2f} s to reach the worker"
    assert get_status_code(proc.address, "127.0.8.2") == 200  # its neighbour is not banned
    assert [ban["target"] for ban in admin.json("GET", "/api/v1/bans")] == ["127.0.8.1"]
    assert admin.json("DELETE", "/api/v1/bans/127.0.8.1") == {"lifted": 1, "note": None}
    wait_for(lambda: get_status_code(proc.address, "127.0.8.1") == 200, 3, "the unbanned client let in")


def test_a_pin_through_the_api_changes_the_mode(shield: tuple[Any, Admin, Path]) -> None:
    _, admin, state_dir = shield
    pinned = admin.json(
        "POST", "/api/v1/mode/pin", {"mode": "under_attack", "duration": "5m", "reason": "drill"}
    )
    assert pinned["mode_now"] == "under_attack"

    def workers_told(mode: str, pinned: bool) -> bool:
        try:
            state = json.loads((state_dir / "control" / "state.json").read_text())
        except FileNotFoundError:  # written at the next tick
            return False
        return (state["mode"], state["pinned"]) == (mode, pinned)

    wait_for(lambda: workers_told("under_attack", True), 3, "state.json to carry the pin")
    assert admin.json("GET", "/api/v1/status")["mode"] == "under_attack"
    assert admin.json("POST", "/api/v1/mode/unpin")["mode"] is None
    wait_for(lambda: workers_told("normal", False), 3, "state.json to carry the unpin")
    assert admin.json("GET", "/api/v1/status")["pinned"] is False


def test_metrics_parse_with_prometheus_clients_parser(shield: tuple[Any, Admin, Path]) -> None:
    proc, admin, _ = shield
    for _ in range(5):
        assert get_status_code(proc.address, "127.0.8.9") is not None

    def scrape() -> dict[str, Any]:
        code, headers, body = admin.call("GET", "/metrics", token=None)
        assert code == 200
        assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return {family.name: family for family in text_string_to_metric_families(body.decode())}

    def requests(families: dict[str, Any]) -> float:
        return sum(sample.value for sample in families["shieldwall_requests"].samples)

    # the workers send their second once a second; the control process adds it at its next tick
    wait_for(lambda: requests(scrape()) >= 5, 5, "the requests counted")
    families = scrape()
    assert families["shieldwall_origin_latency_seconds"].type == "histogram"
    assert {s.labels["mode"] for s in families["shieldwall_mode"].samples} == {
        "normal",
        "elevated",
        "under_attack",
    }


def test_a_reload_through_the_api_reaches_the_supervisor(shield: tuple[Any, Admin, Path]) -> None:
    proc, admin, _ = shield
    code, _, body = admin.call("POST", "/api/v1/reload")
    assert code == 202, body
    assert json.loads(body)["supervisor"] == proc.pid
    proc.wait_until(lambda: "reload complete" in proc.log_tail(), 20, "the reload to complete")
