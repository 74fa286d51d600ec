"""The supervisor: binds the listeners once, forks one worker per socket index and keeps them running.

Worker i serves socket i of every listener group, for the supervisor's whole life: a crashed worker is
replaced on the same index (connections wait in the kernel backlog meanwhile), and a reload starts a new
generation on the same sockets before the old one drains, so no connection is refused. Because the
supervisor keeps every socket open, the reuseport groups and their BPF steering never change.

Why os.fork and not multiprocessing or subprocess: the child inherits the bound sockets and the
validated Settings as they are: no pickling, no passing descriptors over a Unix socket, no re-import or
re-parse, and copy-on-write makes it cheap. The supervisor runs no event loop and no threads, which is
what makes forking safe.

Signals are blocked and read one at a time with sigtimedwait() in a single loop: no handler runs at an
arbitrary point, nothing is interrupted, and the wait's timeout drives restart backoff and deadlines.
SIGCHLD only says "a child changed state", so every wake-up sweeps the workers with waitpid(WNOHANG).
Workers say "accepting now" with a real-time signal: those queue (two never merge into one) and carry
the sender's pid, which is all a rolling reload needs to know.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import itertools
import os
import signal
import socket
import sys
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from shieldwall import __version__
from shieldwall.challenge.keys import SecretFileError, load_or_create
from shieldwall.config import ConfigError, Settings, load_config
from shieldwall.config.schema import Listener
from shieldwall.dataplane.challenges import secret_path
from shieldwall.dataplane.config_files import check_files
from shieldwall.dataplane.control_child import ControlChild
from shieldwall.dataplane.listen import ListenerGroup, bind_listeners
from shieldwall.dataplane.worker import bind_to_parent, run_worker
from shieldwall.state import ban_store

_READY = signal.SIGRTMIN  # worker → supervisor: "accepting on every socket"
_STOP_SIGNALS = frozenset({signal.SIGTERM, signal.SIGINT})
_WAITED = frozenset({signal.SIGCHLD, signal.SIGHUP, _READY, *_STOP_SIGNALS})

_KILL_AFTER_GRACE = 5.0  # SIGKILL what is still running this long after shutdown_grace
_READY_TIMEOUT = 15.0  # a reload's new workers must be accepting within this, or it is abandoned
_STABLE_AFTER = 5.0  # a worker that ran this long before dying is restarted at once
_BACKOFF_FIRST = 0.5  # then 1, 2, 4 ... seconds for a worker that keeps dying young
_BACKOFF_MAX = 30.0
_TICK = 1.0  # longest wait: the waitpid sweep also runs on this beat, in case a SIGCHLD went astray


@dataclass
class _Worker:
    pid: int
    index: int
    generation: int
    started: float
    ready: bool = False


@dataclass
class _Reload:
    generation: int
    settings: Settings
    waiting: set[int]  # pids of new workers not accepting yet
    deadline: float


def run(settings: Settings, *, config_path: Path | None, overrides: dict[str, object]) -> int:
    """Serve until SIGTERM/SIGINT; the process exit code. Must run in the main thread.

    Raises StateDirError when server.state_dir cannot be used and ListenError when a listener cannot be
    bound, both before any worker starts. `config_path` and `overrides` are what SIGHUP reloads from (the
    same CLI overrides are applied again)."""
    ban_store.prepare(settings.server.state_dir)
    try:  # created once here, so that workers starting together find it and none races to write it
        load_or_create(secret_path(settings.server.state_dir))
    except (OSError, SecretFileError) as exc:
        raise ban_store.StateDirError(f"challenge secret: {exc}") from exc
    _share_secret(settings)
    # "One per core" means the cores this process may run on (taskset, container cpusets).
    n_workers = settings.server.workers or len(os.sched_getaffinity(0)) or 1
    groups = bind_listeners(settings, n_workers)
    control = ControlChild(_log) if settings.detector.enabled else None
    try:
        return _Supervisor(settings, groups, n_workers, config_path, overrides, control=control).serve()
    finally:
        for group in groups:
            group.close()
        if control is not None:
            control.close()


class _Supervisor:
    def __init__(
        self,
        settings: Settings,
        groups: Sequence[ListenerGroup],
        n_workers: int,
        config_path: Path | None,
        overrides: dict[str, object],
        *,
        control: ControlChild | None = None,
    ) -> None:
        self.settings = settings
        self.control = control
        self.groups = groups
        self.n_workers = n_workers
        self.config_path = config_path
        self.overrides = overrides
        self.pid = os.getpid()
        self.generations = itertools.count(1)
        self.generation = next(self.generations)
        self.workers: dict[int, _Worker] = {}
        self.crash_streak = [0] * n_workers
        self.restart_due: dict[int, float] = {}
        self.reload: _Reload | None = None
        self.any_ready = False
        self.stop_deadline: float | None = None
        self.killed = False
        self.exit_code = 0

    def serve(self) -> int:
        # SIGCHLD must not be SIG_IGN (the kernel would reap workers before waitpid sees them) and a
        # late READY must not kill us with its default action once the mask is restored.
        previous = {signal.SIGCHLD: signal.signal(signal.SIGCHLD, signal.SIG_DFL)}
        previous[_READY] = signal.signal(_READY, signal.SIG_IGN)
        previous_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _WAITED)
        try:
            self._announce()
            for index in range(self.n_workers):
                self._spawn(index, self.generation, self.settings)
            if self.control is not None:
                self.control.spawn(self.settings, self._close_listeners)
            while self.stop_deadline is None or self.workers or self._control_running():
                info = signal.sigtimedwait(_WAITED, self._timeout())
                while info is not None:  # take everything pending: a READY must count before its
                    self._on_signal(info.si_signo, info.si_pid)  # sender's exit is reaped
                    info = signal.sigtimedwait(_WAITED, 0)
                self._reap()
                self._on_timers()
        except BaseException:
            self._kill_and_reap()
            raise
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous_mask)
            for signum, handler in previous.items():
                signal.signal(signum, handler)
        return self.exit_code

    # --- events -----------------------------------------------------------------------------------

    def _on_signal(self, signum: int, sender: int) -> None:
        if signum == _READY:
            self._on_ready(sender)
        elif signum == signal.SIGHUP:
            self._reload_config()
        elif signum in _STOP_SIGNALS:
            self._stop(signal.Signals(signum).name)
        # SIGCHLD: the _reap() after every wake-up handles it.

    def _on_ready(self, pid: int) -> None:
        worker = self.workers.get(pid)
        if worker is None:
            return
        worker.ready = self.any_ready = True
        if self.reload is not None and pid in self.reload.waiting:
            self.reload.waiting.discard(pid)
            if not self.reload.waiting:
                self._commit_reload()

    def _control_running(self) -> bool:
        return self.control is not None and self.control.pid is not None

    def _close_listeners(self) -> None:
        for group in self.groups:
            for sock in group.sockets:
                sock.close()

    def _reap(self) -> None:
        if self.control is not None:
            self.control.reap(stopping=self.stop_deadline is not None)
        for pid in list(self.workers):
            try:
                done, status = os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:  # reaped behind our back: nothing to learn but that it is gone
                done, status = pid, None
            if done:
                self._on_exit(self.workers.pop(pid), status)

    def _on_exit(self, worker: _Worker, status: int | None) -> None:
        how = _describe(status)
        name = f"worker {worker.index} (pid {worker.pid})"
        if self.stop_deadline is not None:
            if status != 0:
                _log(f"{name} {how}")
        elif worker.generation == self.generation:
            self._schedule_restart(worker, how)
        elif self.reload is not None and worker.generation == self.reload.generation:
            self._abandon_reload(f"new {name} {how} before it accepted connections")
        else:
            _log(f"retired {name} {how}")

    def _schedule_restart(self, worker: _Worker, how: str) -> None:
        name = f"worker {worker.index} (pid {worker.pid})"
        if not self.any_ready:
            # Not one worker ever started: the configuration cannot work, restarting would only loop.
            _log(f"{name} {how} before it could accept connections; stopping (see the error above)")
            self.exit_code = 1
            self._stop(None)
            return
        now = time.monotonic()
        if now - worker.started >= _STABLE_AFTER:
            self.crash_streak[worker.index] = 0
        streak = self.crash_streak[worker.index]
        delay = 0.0 if streak == 0 else min(_BACKOFF_MAX, _BACKOFF_FIRST * 2 ** (streak - 1))
        self.crash_streak[worker.index] = streak + 1
        self.restart_due[worker.index] = now + delay
        _log(f"{name} {how}; restarting it " + ("now" if delay == 0 else f"in {delay:g} s"))

    def _on_timers(self) -> None:
        now = time.monotonic()
        if self.control is not None and self.stop_deadline is None:
            self.control.restart_if_due(self.settings, self._close_listeners)
        for index, due in list(self.restart_due.items()):
            if due <= now:
                del self.restart_due[index]
                try:
                    pid = self._spawn(index, self.generation, self.settings)
                except OSError as exc:  # out of processes or memory: try again, without spinning
                    self.restart_due[index] = now + _BACKOFF_FIRST
                    _log(f"cannot fork worker {index}: {exc}")
                    continue
                _log(f"worker {index} restarted as pid {pid}")
        if self.reload is not None and now >= self.reload.deadline:
            self._abandon_reload(f"the new workers were not accepting within {_READY_TIMEOUT:g} s")
        if self.stop_deadline is not None and now >= self.stop_deadline and not self.killed:
            _log(f"{len(self.workers)} worker(s) still busy after the grace period; killing them")
            self._signal_all(signal.SIGKILL)
            self.killed = True

    def _timeout(self) -> float:
        deadlines = [*self.restart_due.values()]
        if self.control is not None and self.control.due is not None:
            deadlines.append(self.control.due)
        if self.reload is not None:
            deadlines.append(self.reload.deadline)
        if self.stop_deadline is not None and not self.killed:
            deadlines.append(self.stop_deadline)
        wait = min(deadlines, default=float("inf")) - time.monotonic()
        return max(0.0, min(_TICK, wait))

    # --- stopping -----------------------------------------------------------------------------------

    def _stop(self, signal_name: str | None) -> None:
        if self.stop_deadline is not None:
            if signal_name is not None and not self.killed:
                _log(f"second {signal_name}: killing the workers now")
                self._signal_all(signal.SIGKILL)
                self.killed = True
            return
        grace = self.settings.server.shutdown_grace
        self.stop_deadline = time.monotonic() + grace + _KILL_AFTER_GRACE
        self.restart_due.clear()
        self.reload = None
        if signal_name is not None:
            _log(f"{signal_name}: stopping {len(self.workers)} workers (in-flight requests get {grace:g} s)")
        self._signal_all(signal.SIGTERM)

    def _signal_all(self, signum: int) -> None:
        if self.control is not None:
            self.control.signal(signum)
        for pid in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def _kill_and_reap(self) -> None:
        """After a supervisor bug: leave no workers behind (SIGKILL ends them at once)."""
        if self.control is not None:
            self.control.kill_and_reap()
        self._signal_all(signal.SIGKILL)
        for pid in self.workers:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        self.workers.clear()

    # --- reload -----------------------------------------------------------------------------------

    def _reload_config(self) -> None:
        if self.stop_deadline is not None:
            return
        if self.reload is not None:
            _log("SIGHUP ignored: the previous reload is still starting its workers")
            return
        _log(f"SIGHUP: reloading {self.config_path or 'the defaults and the command line'}")
        try:
            settings = load_config(self.config_path, self.overrides)
            check_files(settings, str(self.config_path or "<command line>"))
        except ConfigError as exc:
            count = len(exc.problems)
            _log(f"reload failed, the running configuration stays; {exc.source} has {count} problem(s):")
            for problem in exc.problems:
                _log(f"  - {problem}")
            return
        except Exception as exc:  # a loader bug must not take the running service down with it
            _log(f"reload failed, the running configuration stays: {exc!r}")
            return
        settings = self._keep_bound_settings(settings)
        _share_secret(settings)
        self.reload = _Reload(next(self.generations), settings, set(), time.monotonic() + _READY_TIMEOUT)
        for index in range(self.n_workers):
            try:
                self.reload.waiting.add(self._spawn(index, self.reload.generation, settings))
            except OSError as exc:
                self._abandon_reload(f"cannot fork a new worker: {exc}")
                return

    def _keep_bound_settings(self, new: Settings) -> Settings:
        """Settings fixed by the bound sockets (their addresses, their count, the steering program)
        cannot change without a restart: keep the running values and say so."""
        old = self.settings
        changed = [
            key
            for key, before, after in (
                ("listeners", old.listeners, new.listeners),
                ("server.workers", old.server.workers, new.server.workers),
                ("server.steer_by_prefix", old.server.steer_by_prefix, new.server.steer_by_prefix),
            )
            if before != after
        ]
        if not changed:
            return new
        _log(f"{', '.join(changed)} changed: applying that needs a restart; reloading everything else")
        server = new.server.model_copy(
            update={"workers": old.server.workers, "steer_by_prefix": old.server.steer_by_prefix}
        )
        return new.model_copy(update={"listeners": old.listeners, "server": server})

    def _commit_reload(self) -> None:
        assert self.reload is not None
        reload, self.reload = self.reload, None
        retiring = [w for w in self.workers.values() if w.generation == self.generation]
        self.generation, self.settings = reload.generation, reload.settings
        self.restart_due.clear()  # the new generation occupies every index
        self.crash_streak = [0] * self.n_workers
        for worker in retiring:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker.pid, signal.SIGTERM)
        _log(f"reload complete: {self.n_workers} new workers accepting, {len(retiring)} old ones draining")

    def _abandon_reload(self, reason: str) -> None:
        assert self.reload is not None
        reload, self.reload = self.reload, None
        _log(f"reload abandoned, the running configuration stays: {reason}")
        for worker in self.workers.values():
            if worker.generation == reload.generation:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.pid, signal.SIGTERM)

    # --- workers ------------------------------------------------------------------------------------

    def _spawn(self, index: int, generation: int, settings: Settings) -> int:
        sockets = [(group.listener, group.sockets[index]) for group in self.groups]
        sys.stdout.flush()  # else the child would write the parent's buffered text a second time
        sys.stderr.flush()
        # Objects made so far (the config, the ASN table...) stay shared with the children: without
        # this the children's garbage collector touches their pages and copies them (measured: ~32 MB
        # of an ASN table per worker, ~0 with it).
        gc.freeze()
        pid = os.fork()
        if pid == 0:
            self._become_worker(index, settings, sockets)
        self.workers[pid] = _Worker(pid, index, generation, time.monotonic())
        return pid

    def _become_worker(
        self, index: int, settings: Settings, sockets: list[tuple[Listener, socket.socket]]
    ) -> NoReturn:
        """The child's side of fork: never returns into the supervisor's code, whatever happens."""
        code = 1
        try:
            if bind_to_parent(self.pid):
                for group in self.groups:  # only the supervisor needs the other indexes open
                    for other, sock in enumerate(group.sockets):
                        if other != index:
                            sock.close()
                ready = functools.partial(os.kill, self.pid, _READY)
                telemetry = None
                if self.control is not None:
                    self.control.reader.close()
                    telemetry = self.control.writer
                code = run_worker(settings, sockets, index, notify_ready=ready, telemetry=telemetry)
        except BaseException:
            traceback.print_exc()
        finally:
            with contextlib.suppress(BaseException):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)

    def _announce(self) -> None:
        addresses = ", ".join(group.listener.address for group in self.groups)
        steering = ",".join(sorted({group.steering for group in self.groups}))
        plural = "s" if self.n_workers != 1 else ""
        _log(
            f"listening on {addresses} → {self.settings.upstream.url} "
            f"({self.n_workers} worker{plural}, steering={steering})",
            prefix=f"shieldwall {__version__}: ",
        )
        if self.settings.server.steer_by_prefix and self.n_workers > 1:
            for group in self.groups:
                if group.steering_note:
                    _log(f"{group.listener.address}: no prefix steering, {group.steering_note}")


def _describe(status: int | None) -> str:
    if status is None:
        return "is gone (exit status unknown)"
    code = os.waitstatus_to_exitcode(status)
    if code >= 0:
        return f"exited with status {code}"
    try:
        return f"was killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"was killed by signal {-code}"


def _log(message: str, *, prefix: str = "shieldwall: ") -> None:
    with contextlib.suppress(OSError):  # a closed or broken stderr must not take the workers down with it
        print(prefix + message, file=sys.stderr, flush=True)


def _share_secret(settings: Settings) -> None:
    """With `[cluster]`: the node's challenge secret and the cluster's agree (cluster/secret.py)."""
    if not settings.cluster.enabled:
        return
    from shieldwall.cluster.secret import share_secret  # noqa: PLC0415 (redis only for a cluster)

    try:
        _log(share_secret(settings.cluster, secret_path(settings.server.state_dir)))
    except (OSError, SecretFileError) as exc:
        _log(f"challenge secret: cannot share it with the cluster: {exc}")
