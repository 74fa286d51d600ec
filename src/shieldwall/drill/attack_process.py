"""An attack scenario run in a process of its own, so that the flood does not share an event loop with
the visitors it is measured against.

A flood at a thousand requests a second keeps a Python event loop busy; visitors in that same loop
would wait for it, and their latencies would measure the load generator rather than the shield. So
the scenario runs in a child, `python -m shieldwall.drill.attack_process`, in a session of its own,
spoken to over its stdin and stdout (a plain subprocess: unlike multiprocessing's "spawn", it never
re-imports the drill's main module):

    drill → child   one line: the scenario, target URL and request timeout (pickled, base64)
    child → drill   "ready"                      once everything is imported
    drill → child   "go"                         at the instant the drill marks as the attack's start
    child → drill   "sent N" every SENT_EVERY s  read by the drill at its marks
    child → drill   "result {tally JSON}"        when the scenario's own bounds have stopped it

The child also stops when its stdin closes (the drill is gone). `stop()` kills it by PID.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import pickle
import sys
from pathlib import Path
from typing import Any, Final

from shieldwall.drill.attacks import Scenario, Tally
from shieldwall.drill.client import Target
from shieldwall.drill.runtime import Runtime

SENT_EVERY: Final = 0.05
START_TIMEOUT: Final = 30.0


class AttackProcess:
    """`scenario` against `target_url` (loopback, checked by Target.parse) in a child process; its
    stderr goes to `log_path`."""

    def __init__(self, scenario: Scenario, target_url: str, log_path: Path, *, timeout: float = 5.0) -> None:
        Target.parse(target_url)  # refuse a non-loopback target here, before any process starts
        self.name = scenario.name
        self.log_path = log_path
        self.sent = 0
        self._payload = base64.b64encode(pickle.dumps((scenario, target_url, timeout)))
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._result: asyncio.Future[Tally] | None = None

    async def start(self) -> None:
        """Start the child and wait until it is ready to attack (RuntimeError if it is not)."""
        loop = asyncio.get_running_loop()
        self._result = loop.create_future()
        with self.log_path.open("wb") as log:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "shieldwall.drill.attack_process",
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log,
                start_new_session=True,
            )  # fmt: skip
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(self._payload + b"\n")
        try:
            line = await asyncio.wait_for(self._process.stdout.readline(), START_TIMEOUT)
        except TimeoutError:
            line = b""
        if line.strip() != b"ready":
            await self.stop()
            raise RuntimeError(f"the attack process ({self.name}) did not start; see {self.log_path}")
        self._reader = asyncio.ensure_future(self._read(self._process.stdout))

    def go(self) -> None:
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.write(b"go\n")

    async def result(self, timeout: float) -> Tally:
        """The scenario's tally once it has ended by itself; TimeoutError after `timeout` s, and
        RuntimeError if the child ended without one."""
        assert self._result is not None
        return await asyncio.wait_for(asyncio.shield(self._result), timeout)

    async def stop(self) -> None:
        """Kill the child if it still runs (only ever by its PID) and reap it."""
        process = self._process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def _read(self, stdout: asyncio.StreamReader) -> None:
        assert self._result is not None
        while line := await stdout.readline():
            word, _, rest = line.decode().strip().partition(" ")
            if word == "sent" and rest.isdigit():
                self.sent = int(rest)
            elif word == "result" and not self._result.done():
                tally = tally_from_json(json.loads(rest))
                self.sent = tally.sent
                self._result.set_result(tally)
        if not self._result.done():
            self._result.set_exception(
                RuntimeError(f"the attack process ({self.name}) ended without a result; see {self.log_path}")
            )


def tally_from_json(data: dict[str, Any]) -> Tally:
    """The Tally of Tally.to_json()."""
    tally = Tally(str(data["scenario"]), str(data["kind"]), int(data["sent"]))
    tally.statuses = {int(status): int(count) for status, count in data["statuses"].items()}
    tally.errors = {str(reason): int(count) for reason, count in data["errors"].items()}
    return tally


async def _attack(scenario: Scenario, target_url: str, timeout: float) -> Tally:
    tally = Tally(scenario.name)

    async def publish() -> None:
        while True:
            print(f"sent {tally.sent}", flush=True)
            await asyncio.sleep(SENT_EVERY)

    publisher = asyncio.ensure_future(publish())
    try:
        await scenario.run(Runtime.real(Target.parse(target_url), timeout=timeout), tally=tally)
    finally:
        publisher.cancel()
    return tally


def main() -> int:
    import uvloop  # noqa: PLC0415 (the child's own loop)

    scenario, target_url, timeout = pickle.loads(base64.b64decode(sys.stdin.buffer.readline()))
    print("ready", flush=True)
    if sys.stdin.buffer.readline().strip() != b"go":
        return 0  # the drill is gone before the attack started
    tally = uvloop.run(_attack(scenario, target_url, timeout))
    print(f"result {json.dumps(tally.to_json())}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
