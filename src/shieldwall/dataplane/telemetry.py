"""A worker's side of the detector: count each request into the second's counters, ship the second to
the control process, and pick up the mode and signatures it decided.

Per request (`finished`): one outcome count, the heavy hitters and distinct-client sketch (client,
prefix, path, User-Agent), and for a sampled request its feature vector (detector/features.py, ~5 µs,
for a few hundred requests a second). From the sweeper (`on_tick`): once a second the snapshot goes out as
one datagram, sent without blocking: if the control process is slow or gone the second is dropped, never
the request. The control state file is polled on the same tick (one stat).
"""

from __future__ import annotations

import contextlib
import logging
import socket
from collections.abc import Callable
from typing import TYPE_CHECKING, Final

from shieldwall.cluster import ban_wire
from shieldwall.control.state import STATE_FILE, ControlState, StateReader, control_dir
from shieldwall.dataplane.views import request_view
from shieldwall.detector.counters import Answered, Outcome, SecondCounters
from shieldwall.detector.features import FEATURE_NAMES, features_of

if TYPE_CHECKING:
    from shieldwall.config.schema import Settings
    from shieldwall.dataplane.exchange import Exchange
    from shieldwall.limiter.bans import Ban

log = logging.getLogger("shieldwall.telemetry")

OTHER_ROUTE: Final = 0  # requests under none of [detector] route_classes


class WorkerTelemetry:
    def __init__(
        self,
        settings: Settings,
        worker_id: int,
        now: float,
        sock: socket.socket | None,
        wall: Callable[[], float],
    ) -> None:
        self.wall = wall
        detector = settings.detector
        # Route class 0 is "other"; class i is the i-th of [detector] route_classes (first match wins).
        self.route_prefixes = tuple(prefix.encode() for prefix in detector.route_classes)
        self.counters = SecondCounters(
            worker_id, now, route_classes=1 + len(self.route_prefixes), sample_size=detector.sample_size
        )
        self.sock = sock
        self._state_reader = StateReader(control_dir(settings.server.state_dir) / STATE_FILE)
        self.dropped = 0  # seconds the control process did not take
        self.share_bans = settings.cluster.enabled
        self._bans_sent = 0  # this second's ban messages (cluster/ban_wire.py)

    def ban(self, ban: Ban) -> None:
        """With `[cluster]`: tell the control process of a new ban at once, so the other nodes refuse
        the client within a second (at most ban_wire.MAX_PER_SECOND a second; the ban file has the rest)."""
        if not self.share_bans or self.sock is None or self._bans_sent >= ban_wire.MAX_PER_SECOND:
            return
        self._bans_sent += 1
        with contextlib.suppress(OSError):  # full or gone: the worker's ban file carries it a little later
            self.sock.send(ban_wire.encode(ban))

    def finished(self, ex: Exchange, prefix: str) -> None:
        """An exchange is answered: count it (its `outcome`), sketch it, maybe sample it."""
        counters = self.counters
        head = ex.head
        if head is None:
            counters.request(OTHER_ROUTE, ex.outcome)
            return
        counters.request(self.route_class(head.target), ex.outcome)
        ip = ex.client_ip
        weight = counters.sketch_weight()
        if weight:
            path = head.target.partition(b"?")[0].decode("latin-1")
            user_agent = (head.header(b"user-agent") or b"").decode("latin-1")
            counters.sketch(ip, (ip, prefix, path, user_agent), weight)
        else:
            counters.count_client(ip)
        # At most MAX_ANSWERED a second are kept: past that (a flood's refusals) nothing is built.
        if ex.ref_id is not None and ex.outcome is not Outcome.ALLOW and counters.wants_answer():
            reason = ex.decision.rule if ex.decision.rule is not None else ex.outcome.name.lower()
            counters.answer(
                Answered(
                    ex.ref_id,
                    self.wall(),
                    ip,
                    head.method.decode("latin-1"),
                    head.target[:200].decode("latin-1"),
                    ex.status,
                    reason,
                )
            )
        if counters.sample.wants():
            features = features_of(request_view(head, ip, prefix))
            counters.sample.put(tuple(getattr(features, name) for name in FEATURE_NAMES))

    def route_class(self, target: bytes) -> int:
        """1 + the index of the first route prefix the target starts with; 0 for none (a short loop:
        at most 15 prefixes, and none configured costs one empty loop)."""
        for index, prefix in enumerate(self.route_prefixes, 1):
            if target.startswith(prefix):
                return index
        return OTHER_ROUTE

    def on_tick(self, now: float, stats: Callable[[], dict[str, int]]) -> ControlState | None:
        """Ship the second (with the worker's `stats()`) if one has passed; the control state if it
        changed since the last poll."""
        counters = self.counters
        if now - counters.started >= 1.0:
            figures = stats()
            figures["telemetry.answered_dropped"] = counters.answered_dropped
            figures["telemetry.seconds_dropped"] = self.dropped
            payload = counters.snapshot_and_reset(now, figures).to_bytes()
            self._bans_sent = 0
            if self.sock is not None:
                try:
                    self.sock.send(payload)
                except OSError:  # full (control process busy) or gone: the detector misses a second
                    self.dropped += 1
        try:
            data = self._state_reader.changed()
            return None if data is None else ControlState.from_json(data)
        except (OSError, ValueError) as exc:
            log.warning("control state unreadable, keeping the last one: %s", exc)
            return None


OUTCOME_OF_STATUS: Final = {429: Outcome.LIMIT, 503: Outcome.SHED}
"""The outcome of a request the shield refused, by the status it answered (403 and the rest: BLOCK)."""
