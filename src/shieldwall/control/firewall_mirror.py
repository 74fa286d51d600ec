"""The nftables mirror of the bans (`[firewall] nftables = true`), run by the control process: the kernel
drops banned clients before a worker spends anything on them.

Once a second it asks the ban store whether a file changed (one stat per file); when one did, or when
the sets are due a full rewrite (firewall/sync.py), it loads the active bans and applies the smallest
transaction with `nft -j -f -`. Loading, planning and the JSON run in a thread and `nft` in a
subprocess bounded by `firewall.timeout`, so the control loop's tick never waits for them.

A failure (no `nft`, no CAP_NET_ADMIN, a kernel without nf_tables) is logged once, saying what to do,
and again only when it changes or ends; meanwhile nft is tried again every RETRY seconds and the
workers enforce every ban themselves, as they always do. The status snapshot's "firewall" section and
the metrics shieldwall_firewall_mirror_ok and shieldwall_firewall_elements show how it is doing.

On stop the table stays in the kernel: a restarting shield keeps its banned clients out meanwhile, and
each element expires with its ban. `nft delete table inet <table>` removes it (docs/firewall.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any, Final

from shieldwall.config.schema import Settings
from shieldwall.control.status import StatusBook
from shieldwall.firewall import nft_json
from shieldwall.firewall.entries import BanSet, ban_set
from shieldwall.firewall.sync import KernelSets, Transaction
from shieldwall.net.networks import parse_network
from shieldwall.state import ban_store

log = logging.getLogger("shieldwall.control")

POLL: Final = 1.0
RETRY: Final = 10.0  # seconds between attempts while nft fails
_ERROR_CHARS: Final = 300
_NOT_YET: Final = "not applied yet"


@dataclass(frozen=True, slots=True)
class _Prepared:
    bans: BanSet
    transaction: Transaction | None
    payload: bytes


class FirewallMirror:
    """Keeps `inet <firewall.table>` holding the active bans; `status` is its section of the snapshot."""

    def __init__(self, settings: Settings) -> None:
        firewall = settings.firewall
        self.enabled = firewall.nftables
        self.table = firewall.table
        self.nft = firewall.nft
        self.timeout = firewall.timeout
        self.state_dir = settings.server.state_dir
        self.allowlist = [parse_network(cidr) for cidr in settings.bans.allowlist]
        self.kernel = KernelSets(firewall.table)
        self.status: dict[str, Any] = {
            "table": f"inet {firewall.table}",
            "ok": False,
            "elements": 0,
            "elements_v4": 0,
            "elements_v6": 0,
            "left_out_allowlisted": 0,
            "last_change": None,
            "error": None,
        }
        self._stamp: ban_store.Stamp | None = None
        self._cache: ban_store.FileCache = {}
        self._retry_at = 0.0
        self._reported: str | None = _NOT_YET  # the problem last logged; None: working, and said so
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self, status: StatusBook) -> None:
        """Run in the background (nothing when [firewall] nftables is off), shown in `status`."""
        if not self.enabled:
            return
        status.extra["firewall"] = self.status
        self._task = asyncio.create_task(self._run(), name="firewall mirror")

    async def stop(self) -> None:
        """Finish the nft run under way (bounded by its timeout) and stop; the table stays."""
        if self._task is None:
            return
        self._stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), self.timeout + POLL)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.status["last_change"] is not None:
            log.info(
                "left table inet %s in the kernel: its elements expire with their bans "
                "(`nft delete table inet %s` removes it)",
                self.table,
                self.table,
            )

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.step(time.time())
            except Exception:  # a bug here must not end the control process, which serves much else
                log.exception("the nftables mirror failed; trying again in %g s", RETRY)
                self.kernel.forget()
                self._retry_at = time.time() + RETRY
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), POLL)

    async def step(self, now: float) -> None:
        """One poll: apply the bans if something changed or is due."""
        if now < self._retry_at:
            return
        try:
            stamp = ban_store.changed_since(self.state_dir, self._stamp)
        except ban_store.StateDirError as exc:
            self._failed(str(exc), now)
            return
        if stamp is None and not self.kernel.stale(now):
            self._count(now)
            return
        self._stamp = stamp or self._stamp
        try:
            prepared = await asyncio.to_thread(self._prepare, now)
        except ban_store.StateDirError as exc:
            self._failed(str(exc), now)
            return
        self.status["left_out_allowlisted"] = prepared.bans.allowlisted
        transaction = prepared.transaction
        if transaction is not None:
            problem = await self._nft(prepared.payload)
            if problem is not None and not transaction.full:  # the kernel differs from what we thought
                self.kernel.forget()
                prepared = await asyncio.to_thread(self._prepare, now)
                transaction = prepared.transaction
                problem = None if transaction is None else await self._nft(prepared.payload)
            if problem is not None:
                self.kernel.forget()
                self._failed(problem, now)
                return
            if transaction is not None:
                self.kernel.applied(transaction, now)
                self.status["last_change"] = now
        self._succeeded(now)

    def _prepare(self, now: float) -> _Prepared:
        """In a thread: the active bans, the transaction and its JSON (0.3 to 0.55 s for 100,000)."""
        contents = ban_store.load_all(self.state_dir, now, self._cache)
        bans = ban_set(contents.bans, now, self.allowlist)
        transaction = self.kernel.plan(bans, now)
        payload = b"" if transaction is None else nft_json.document(transaction.commands)
        return _Prepared(bans, transaction, payload)

    async def _nft(self, payload: bytes) -> str | None:
        """Run `nft -j -f -` on `payload`; None when it worked, else what went wrong and what to do."""
        try:
            process = await asyncio.create_subprocess_exec(
                self.nft,
                "-j",
                "-f",
                "-",
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            return (
                f"cannot run firewall.nft = {self.nft!r} ({exc.strerror or exc}): install nftables "
                "(Debian/Ubuntu: apt install nftables) or set [firewall] nft to the full path of nft"
            )
        try:
            _, stderr = await asyncio.wait_for(process.communicate(payload), self.timeout)
        except TimeoutError:
            await _end(process)
            return f"nft took more than {self.timeout:g} s (firewall.timeout) and was stopped"
        except BaseException:  # cancelled: the control process is stopping; leave no nft behind
            await _end(process)
            raise
        if process.returncode == 0:
            return None
        return explain(stderr.decode(errors="replace"))

    def _count(self, now: float) -> None:
        v4, v6 = self.kernel.elements(now)
        self.status.update(elements=v4 + v6, elements_v4=v4, elements_v6=v6)

    def _succeeded(self, now: float) -> None:
        self._count(now)
        self.status.update(ok=True, error=None)
        if self._reported is not None:
            log.info(
                "nftables: table inet %s holds %d banned addresses and prefixes; the kernel drops them",
                self.table,
                self.status["elements"],
            )
            self._reported = None

    def _failed(self, problem: str, now: float) -> None:
        self._retry_at = now + RETRY
        self.status.update(ok=False, error=problem)
        self._count(now)
        if problem != self._reported:
            log.error("nftables mirror: %s; meanwhile the shield enforces the bans itself", problem)
            self._reported = problem


async def _end(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    await asyncio.shield(process.wait())


def explain(stderr: str) -> str:
    """What nft's complaint means for the operator."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    said = "; ".join(lines)[:_ERROR_CHARS] or "no message"
    if "Operation not permitted" in stderr or "must be root" in stderr:
        return (
            f"nft was not permitted to change the firewall ({said}): mirroring bans into nftables needs "
            "CAP_NET_ADMIN. Run shieldwall as root, or grant the capability (systemd: "
            "AmbientCapabilities=CAP_NET_ADMIN), or set [firewall] nftables = false"
        )
    return f"nft failed: {said}"
