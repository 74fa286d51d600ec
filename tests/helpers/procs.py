"""Start the demo origin and `shieldwall run` as real subprocesses on loopback, and stop them by PID.

The process plumbing is shieldwall.drill.processes; this module holds what the tests add: the
command lines, the TOML config, and LIVE, every running server, for the failure report hook in
tests/integration/conftest.py."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from helpers.tomlfile import merge, write_toml
from shieldwall.drill.processes import Child, free_port

READY_TIMEOUT = 15.0

# Every test shield stops quickly and logs to its stderr file; tests add their own settings on top.
# The admin listener is off unless a test turns it on: its default port is fixed, and shields started
# side by side would compete for it.
BASE_SHIELD_CONFIG: dict[str, Any] = {"server": {"shutdown_grace": 2.0}, "admin": {"enabled": False}}


class ServerProcess(Child):
    """A test server; `url` is its base URL, without a trailing slash."""

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


LIVE: list[ServerProcess] = []


def start_origin(workdir: Path) -> ServerProcess:
    """`python -m shieldwall.drill.origin` on a free loopback port, once it has said it listens."""
    argv = [sys.executable, "-m", "shieldwall.drill.origin", "--listen", "127.0.0.1:0"]
    proc = ServerProcess.spawn("origin", argv, workdir / "origin.stderr", capture_stdout=True)
    proc.read_announced_port("origin listening on 127.0.0.1:", READY_TIMEOUT)
    LIVE.append(proc)
    return proc


def start_shield(workdir: Path, upstream: str, config: dict[str, Any] | None = None) -> ServerProcess:
    """`shieldwall run --workers 1` in front of `upstream`, with BASE_SHIELD_CONFIG + `config`
    written to a TOML file, once its port accepts connections. The shield listens on a free
    127.0.0.1 port, unless `config` declares its own `listeners` (the first one is then the address)."""
    config = merge(BASE_SHIELD_CONFIG, config or {})
    config.setdefault("server", {}).setdefault("state_dir", str(workdir / "state"))
    if config.get("listeners"):
        host, _, port_text = config["listeners"][0]["address"].rpartition(":")
        host, port = host.strip("[]"), int(port_text)
        listen = []
    else:
        host, port = "127.0.0.1", free_port()
        listen = ["--listen", f"127.0.0.1:{port}"]
    name = f"shield-{port}"
    config_path = workdir / f"{name}.toml"
    write_toml(config_path, config)
    argv = [
        sys.executable, "-m", "shieldwall", "run",
        "--upstream", upstream,
        *listen,
        "--workers", "1",
        "--config", str(config_path),
    ]  # fmt: skip
    proc = ServerProcess.spawn(name, argv, workdir / f"{name}.stderr", port=port, host=host)
    proc.wait_accepting(READY_TIMEOUT)
    LIVE.append(proc)
    return proc


def stop(proc: ServerProcess) -> None:
    """Stop `proc` (see Child.stop) and forget it."""
    if proc in LIVE:
        LIVE.remove(proc)
    proc.stop()
