"""Integration fixtures: the real demo origin and real `shieldwall run` processes on loopback.

`origin` lives for the session. `start_shield(config, upstream=...)` starts a shield in front of the
origin (or another upstream) with a TOML config; shields stop when the test (or, for
`start_module_shield`, the module) ends. A shield that died on its own fails the test, and every
failing test shows the stderr of the servers still running."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers import procs


@pytest.fixture(scope="session")
def origin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[procs.ServerProcess]:
    proc = procs.start_origin(tmp_path_factory.mktemp("origin"))
    yield proc
    procs.stop(proc)


class ShieldLauncher:
    """Starts shields and remembers them so that the fixture can stop every one at teardown."""

    def __init__(self, workdir: Path, origin: procs.ServerProcess) -> None:
        self.workdir = workdir
        self.origin = origin
        self.started: list[procs.ServerProcess] = []

    def __call__(
        self, config: dict[str, Any] | None = None, upstream: str | None = None
    ) -> procs.ServerProcess:
        proc = procs.start_shield(self.workdir, upstream or self.origin.url, config)
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        died = [proc for proc in self.started if proc.popen.poll() is not None]
        for proc in self.started:
            procs.stop(proc)
        if died:
            report = "\n".join(
                f"--- {proc.name} exited with {proc.popen.returncode} ---\n{proc.log_tail()}" for proc in died
            )
            pytest.fail(f"shield process(es) died during the test:\n{report}")


@pytest.fixture
def start_shield(tmp_path: Path, origin: procs.ServerProcess) -> Iterator[ShieldLauncher]:
    launcher = ShieldLauncher(tmp_path, origin)
    yield launcher
    launcher.stop_all()


@pytest.fixture(scope="module")
def start_module_shield(
    tmp_path_factory: pytest.TempPathFactory, origin: procs.ServerProcess
) -> Iterator[ShieldLauncher]:
    launcher = ShieldLauncher(tmp_path_factory.mktemp("shields"), origin)
    yield launcher
    launcher.stop_all()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for proc in procs.LIVE:
            report.sections.append((f"{proc.name} (pid {proc.pid}) stderr, last lines", proc.log_tail()))
    return report
