"""The control process's event loop: telemetry in, one ControlLoop tick a second, files out.

Started (and restarted when it dies) by the supervisor, with the reading end of the telemetry socket.
It writes `state_dir`/control/state.json for the workers (control/state.py) and is the one writer of
the incidents database, `state_dir`/incidents.sqlite3 (state/incident_store.py): while an incident is
open it is saved every INCIDENT_SAVE_EVERY seconds and on every event, and once more when it closes, so
a crash loses at most a few seconds of its series. Each save is one short SQLite transaction, made
inline on this loop. At start and then daily, incidents beyond `detector.incident_retention_days` or
`detector.incidents_kept` are deleted. Operator pins arrive through `control/pin.json`, or through the
admin API (admin/, `[admin]`), which this loop also serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from shieldwall.admin.server import start_admin
from shieldwall.alerts.alerter import start_alerter
from shieldwall.config.client_data_schema import open_client_data
from shieldwall.config.detector_schema import Detector
from shieldwall.config.schema import Settings
from shieldwall.control.firewall_mirror import FirewallMirror
from shieldwall.control.incident_facts import FactsBook
from shieldwall.control.loop import ControlLoop, Tick
from shieldwall.control.settings import detector_config
from shieldwall.control.state import PIN_FILE, Pin, StateReader, control_dir, write_state
from shieldwall.core.clock import SystemClock
from shieldwall.detector.events import Event
from shieldwall.net.ipdata import DataFileError
from shieldwall.state.incident_store import DAY, IncidentStoreError, shared

if TYPE_CHECKING:
    from shieldwall.control.cluster_agent import ClusterAgent
    from shieldwall.control.cluster_view import ClusterView

log = logging.getLogger("shieldwall.control")

TICK = 1.0
INCIDENT_SAVE_EVERY = 10.0
PRUNE_EVERY = DAY
_MAX_MESSAGE = 1 << 20


def run_control(settings: Settings, telemetry: socket.socket) -> int:
    """Serve until SIGTERM/SIGINT; the process exit code."""
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="shieldwall: control: %(message)s")
    try:
        asyncio.run(_serve(settings, telemetry))
    except Exception:
        log.exception("the control process failed")
        return 1
    return 0


async def _serve(settings: Settings, telemetry: socket.socket) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    detector = settings.detector
    control = _detector_loop(settings)
    view: ClusterView | None = None
    agent: ClusterAgent | None = None
    if settings.cluster.enabled:  # imported only then: redis-py is ~6 MB a lone node has no use for
        from shieldwall.control.cluster_agent import ClusterAgent  # noqa: PLC0415
        from shieldwall.control.cluster_view import ClusterView  # noqa: PLC0415

        view = ClusterView(_detector_loop(settings), settings.cluster.node_name, settings.server.state_dir)
        agent = ClusterAgent(settings, view)
    link = loop.create_task(agent.run(stop)) if agent is not None else None
    telemetry.setblocking(False)
    loop.add_reader(telemetry.fileno(), _drain, telemetry, control, agent)
    state_dir = settings.server.state_dir
    pins = StateReader(control_dir(state_dir) / PIN_FILE)
    alerter = start_alerter(settings.alerts)
    admin = await start_admin(settings, control, pins)  # logs why and serves nothing when it cannot
    if admin.context is not None and view is not None and agent is not None:
        admin.context.operator.cluster, admin.context.operator.share = view.loop, agent.decide
    mirror = FirewallMirror(settings)
    mirror.start(control.status)  # [firewall] nftables: bans into the kernel; nothing when off
    last_saved = 0.0
    _prune(state_dir, detector)
    next_prune = time.monotonic() + PRUNE_EVERY
    next_tick = time.monotonic() + TICK
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.0, next_tick - time.monotonic()))
        now, now_wall = time.monotonic(), time.time()
        next_tick = max(next_tick + TICK, now + TICK / 2)
        events = _apply_pin(pins, control, now, now_wall) + admin.take_events()
        tick = control.tick(now, now_wall)
        admin.ticked()
        tick.events[:0] = events
        facts = control.facts
        if agent is not None and view is not None:
            tick = view.tick(tick, control.state, control.facts, now, now_wall)
            control.status.extra["cluster"] = {**agent.status.to_json(), **view.describe()}
            if view.applied is not None:
                control.status.applied(view.applied)
            facts = view.loop.facts if view.leading else facts
        alerter.observe(tick.events, tick.closed, now)
        last_saved = _write(state_dir, tick, facts, now, last_saved)
        if view is not None:
            view.after_save(tick)
        if now >= next_prune:
            _prune(state_dir, detector)
            next_prune = now + PRUNE_EVERY
    loop.remove_reader(telemetry.fileno())
    if link is not None:
        await link
    await admin.stop()
    keeper = view.loop if view is not None and view.leading else control
    if keeper.detector.incident is not None and (view is None or not view.connected or view.leading):
        try:
            keeper.facts.save(keeper.detector.incident, state_dir, time.time())
        except IncidentStoreError as exc:
            log.error("cannot save the open incident: %s", exc)
    shared(state_dir).close()
    await alerter.aclose()
    await mirror.stop()  # the table stays: the kernel keeps dropping banned clients while we restart


def _detector_loop(settings: Settings) -> ControlLoop:
    """A detector and its bookkeeping: the node's own, and with `[cluster]` a second one, the cluster's
    (fed by every node's workers: control/cluster_view.py)."""
    detector = settings.detector
    control = ControlLoop(
        detector_config(detector),
        signatures=detector.signatures,
        signature_ttl=detector.signature_ttl,
        clock=SystemClock(),
        route_labels=detector.route_classes,
    )
    with contextlib.suppress(DataFileError):  # the workers report a broken file; reports just lack ASNs
        control.facts.ipdata = open_client_data(settings.client_data)
    return control


def _drain(sock: socket.socket, control: ControlLoop, agent: ClusterAgent | None) -> None:
    while True:
        try:
            payload = sock.recv(_MAX_MESSAGE)
        except (BlockingIOError, InterruptedError):
            return
        if agent is None or not agent.receive(payload):
            control.receive(payload)


def _apply_pin(pins: StateReader, control: ControlLoop, now: float, now_wall: float) -> list[Event]:
    try:
        data = pins.changed()
        if data is None:
            return []
        pin = Pin.from_json(data)
    except (OSError, ValueError) as exc:
        log.warning("ignoring the pin file: %s", exc)
        return []
    return control.pin(pin, now, now_wall)


def _write(state_dir: Path, tick: Tick, facts: FactsBook, now: float, last_saved: float) -> float:
    for event in tick.events:
        log.warning(
            "%s%s%s",
            event.kind,
            f": {event.old} → {event.new}" if event.new is not None else "",
            f" ({event.reason})" if event.reason else "",
        )
    try:
        if tick.state is not None:
            write_state(state_dir, tick.state)
        wall = time.time()
        for incident in tick.closed:
            facts.save(incident, state_dir, wall)
        if tick.open is not None and (tick.events or now - last_saved >= INCIDENT_SAVE_EVERY):
            facts.save(tick.open, state_dir, wall)
            return now
    except OSError as exc:
        log.error("cannot write to %s: %s (the workers keep the last state)", state_dir, exc)
    except IncidentStoreError as exc:
        log.error(
            "cannot save an incident: %s (an open one is saved again within %g s)", exc, INCIDENT_SAVE_EVERY
        )
    return last_saved


def _prune(state_dir: Path, detector: Detector) -> None:
    """Bounded retention of the incidents; a failure is logged, and tried again the next day."""
    try:
        removed = shared(state_dir).prune(
            time.time(), detector.incident_retention_days, detector.incidents_kept
        )
    except IncidentStoreError as exc:
        log.error("cannot prune old incidents: %s", exc)
        return
    if removed:
        log.info(
            "deleted %d old incidents (detector.incident_retention_days, detector.incidents_kept)", removed
        )
