"""`shieldwall top`: frames rendered from status snapshots (a canned one, one made by the real control
loop, and the bare one before the first tick), text from traffic shown as text, the once-a-second loop on
a fake clock, the command's token and URL from the config, and the HTTP fetch against a loopback server."""

from __future__ import annotations

import http.server
import io
import json
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rich.console import Console

from shieldwall.admin.auth import write_token
from shieldwall.cli import top as top_module
from shieldwall.cli.top import FetchError, frame, http_fetcher, top, watch
from shieldwall.core.clock import FakeClock

TOKEN = "t0ken-for-the-tests-0123456789abcdef"
WALL = 1_800_000_000.0
HOSTILE_UA = "[bold red]owned[/bold red]\x1b[2J\x07"

SNAPSHOT: dict[str, Any] = {
    "version": 1,
    "wall": WALL,
    "mode": "under_attack",
    "pinned": True,
    "incident": "INC-20270115-0800-ab12",
    "detector": {"auto_mode": "elevated", "reasons": ["rps 1530 > 4 x baseline 30"], "baseline_ready": True},
    "now": {
        "rps": 1530.0,
        "legit_rps": 30.0,
        "mitigated_rps": 1500.0,
        "by_outcome": {
            "allow": 28.0, "cache": 2.0, "limit": 0.0, "block": 1200.0, "challenge": 300.0, "shed": 0.0
        },
        "origin": {"p50": 0.035, "p95": 0.25, "error_share": 0.02, "inflight": 3},
        "distinct_clients": 4200,
        "new_connections": 12.0,
        "workers": 2,
    },
    "top": {
        "prefix": [["203.0.113.0/24", 900], ["198.51.100.0/24", 400]],
        "client_ip": [["203.0.113.7", 450]],
        "path": [["/search", 1400], ["/", 20]],
        "user_agent": [["python-requests/2.31.0", 1450], [HOSTILE_UA, 3]],
    },
    "signatures": [
        {
            "id": "sig-7f3a",
            "action": "block",
            "description": "user_agent = python-requests/2.31.0",
            "coverage": 0.95,
            "collateral": 0.0005,
            "expires": 1234.0,
        }
    ],
    "stats": {"admission.queued": 17, "admission.in_flight": 8, "admission.limit": 8},
    "history": [[WALL - 60 + n, 30.0, 0.0 if n < 50 else 1500.0, 0.03, "normal" if n < 50 else "under_attack"]
                for n in range(61)],
}  # fmt: skip


def text_of(snapshot: Mapping[str, Any], problem: str | None = None, *, width: int = 120) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None, legacy_windows=False)
    console.print(frame(snapshot, problem))
    output = console.file.getvalue()
    assert isinstance(output, str)
    return output


def test_a_frame_shows_the_mode_the_rates_the_origin_the_tops_and_the_signatures() -> None:
    shown = text_of(SNAPSHOT)
    assert "UNDER ATTACK" in shown and "pinned" in shown and "INC-20270115-0800-ab12" in shown
    assert "at 08:00:00 UTC" in shown
    assert "why: rps 1530 > 4 x baseline 30" in shown
    assert "requests/s 1,530" in shown and "legitimate/s 30" in shown and "mitigated/s 1,500" in shown
    assert "blocked 1,200" in shown and "challenged 300" in shown
    assert "origin p50 35 ms" in shown and "p95 250 ms" in shown and "errors 2%" in shown
    assert "17 queued, 8 in" in shown
    for key in ("203.0.113.0/24", "203.0.113.7", "/search", "python-requests/2.31.0"):
        assert key in shown
    assert "sig-7f3a" in shown and "95%" in shown and "0.05%" in shown
    lines = shown.splitlines()
    legit = next(line for line in lines if line.startswith("legit ≤30/s"))
    assert legit.endswith("█" * 60), "a steady 30/s on its own scale"
    mitigated = next(line for line in lines if line.startswith("mitigated ≤1,500/s"))
    assert mitigated.endswith(" " + "█" * 11), "the last 11 seconds of the flood at full height"
    assert next(line for line in lines if line.startswith("mode")).endswith("█" * 60)


def test_text_from_traffic_is_neither_markup_nor_terminal_control() -> None:
    console = Console(file=io.StringIO(), width=160, color_system="truecolor", force_terminal=True)
    console.print(frame(SNAPSHOT))
    output = console.file.getvalue()
    assert isinstance(output, str)
    assert "[bold red]owned[/bold red]" in output, "markup from a User-Agent is printed as it is"
    assert "\x1b[2J" not in output and "\x07" not in output, "no control character reaches the terminal"
    assert "\ufffd[2J" in output


def test_the_bare_snapshot_before_the_first_tick_renders() -> None:
    shown = text_of({"version": 1, "mode": "normal", "history": []})
    assert "NORMAL" in shown and "no attack signatures" in shown and "admission off" in shown
    for title in ("prefixes", "addresses", "paths", "user agents"):
        assert title in shown, "titles whole over empty lists"


def test_a_snapshot_from_the_real_control_loop_renders() -> None:
    from test_control_loop import Simulation  # noqa: PLC0415 (the loop test's traffic simulation)

    sim = Simulation()
    sim.run(40)
    sim.run(10, flood=1500)
    snapshot = json.loads(json.dumps(sim.loop.status.snapshot))  # as it crosses the API
    shown = text_of(snapshot)
    assert "UNDER ATTACK" in shown and "requests/s 1,530" in shown and "/search" in shown
    assert "python-requests/2.31.0" in shown


def test_the_loop_redraws_once_a_second_keeps_the_last_frame_on_a_failure_and_stops() -> None:
    clock = FakeClock()
    calls: list[float] = []

    def fetch() -> Mapping[str, Any]:
        calls.append(clock.monotonic())
        clock.advance(0.2)  # the request takes a while
        if len(calls) == 4:
            raise FetchError("cannot reach http://127.0.0.1:9180/api/v1/status: connection refused")
        return SNAPSHOT

    console = Console(file=io.StringIO(), width=120, color_system=None)
    watch(fetch, console, seconds=3, clock=clock, sleep=clock.advance)
    assert calls == [1000.0, 1001.0, 1002.0, 1003.0], "one fetch a second, not one every 1.2 s"
    output = console.file.getvalue()
    assert isinstance(output, str)
    assert "connection refused" in output and "UNDER ATTACK" in output, "the problem over the last frame"


@pytest.fixture
def config(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    path = tmp_path / "shieldwall.toml"
    path.write_text(f'[server]\nstate_dir = "{state}"\n\n[admin]\nlisten = "127.0.0.1:9999"\n')
    return path


def test_once_prints_one_frame_read_with_the_token_file_from_the_admin_listener(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_token(config.parent / "state" / "admin" / "token", TOKEN)
    asked: list[tuple[str, str]] = []

    def fake_fetcher(base_url: str, token: str) -> top_module.Fetch:
        asked.append((base_url, token))
        return lambda: SNAPSHOT

    monkeypatch.setattr(top_module, "http_fetcher", fake_fetcher)
    result = CliRunner().invoke(top, ["--once", "--config", str(config)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert asked == [("http://127.0.0.1:9999/", TOKEN)]
    assert "UNDER ATTACK" in result.stdout and "/search" in result.stdout
    result = CliRunner().invoke(top, ["--once", "--url", "http://[::1]:1234", "--config", str(config)])
    assert result.exit_code == 0 and asked[-1] == ("http://[::1]:1234", TOKEN)


def test_without_a_token_file_it_says_where_it_looked(config: Path) -> None:
    result = CliRunner().invoke(top, ["--once", "--config", str(config)])
    assert result.exit_code == 2
    assert f"no admin token in {config.parent / 'state' / 'admin' / 'token'}" in result.stderr


@pytest.mark.parametrize(("refused", "code"), [(True, 2), (False, 1)])
def test_once_exits_2_on_a_refused_token_and_1_on_an_unreachable_api(
    config: Path, monkeypatch: pytest.MonkeyPatch, refused: bool, code: int
) -> None:
    write_token(config.parent / "state" / "admin" / "token", TOKEN)

    def failing() -> Mapping[str, Any]:
        raise FetchError("what went wrong", refused=refused)

    monkeypatch.setattr(top_module, "http_fetcher", lambda base_url, token: failing)
    result = CliRunner().invoke(top, ["--once", "--config", str(config)])
    assert result.exit_code == code and "what went wrong" in result.stderr


class StatusHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/html/api/v1/status":
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"<p")
            return
        if self.path != "/api/v1/status":
            self.send_error(404)
            return
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            self.send_error(401)
            return
        body = json.dumps(SNAPSHOT).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        return


@pytest.fixture
def api() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StatusHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_the_fetch_sends_the_bearer_token_and_tells_a_refusal_from_an_outage(api: str) -> None:
    assert http_fetcher(api, TOKEN)()["mode"] == "under_attack"
    with pytest.raises(FetchError, match="token was refused") as refused:
        http_fetcher(api, "wrong-token-0123456789")()
    assert refused.value.refused
    with pytest.raises(FetchError, match="HTTP 404"):
        http_fetcher(api + "nothing/", TOKEN)()
    with pytest.raises(FetchError, match="not a status snapshot"):
        http_fetcher(api + "html", TOKEN)()
    with pytest.raises(FetchError, match="cannot reach") as down:
        http_fetcher("http://127.0.0.1:9", TOKEN, timeout=2)()
    assert not down.value.refused


def test_numbers_the_api_sends_as_null_show_as_unknown() -> None:
    snapshot = json.loads(json.dumps(SNAPSHOT))
    snapshot["now"]["origin"]["p50"] = None  # the API's rendering of NaN
    snapshot["history"][-1][2] = None
    shown = text_of(snapshot)
    assert "origin p50 \N{EN DASH}" in shown and "mitigated ≤1,500/s" in shown
