"""What the control process does each second, sans-io: merge the workers' seconds, run the detector,
mine attack signatures while under attack, and say what the workers must apply.

`receive(payload)` takes each worker's message as it arrives; `tick(now, now_wall)` (once a second)
merges what arrived since the last tick, feeds the detector and returns a `Tick`: the state for the
workers (written only when it changed), the events for the incident timeline, and incidents to save.

Signature mining compares the attack's sampled requests with a baseline sample collected while the
mode was NORMAL. It runs every `MINE_EVERY` seconds while the mode is above NORMAL, with a time budget
(signatures.mine), so one tick never stalls for long; signatures live `ttl` seconds, refreshed each time
they are mined again, and all go when the incident closes (unless an operator pinned them).
"""

from __future__ import annotations

import logging
import random
from collections import OrderedDict, deque
from dataclasses import dataclass, field, replace

from shieldwall.control.incident_facts import FactsBook
from shieldwall.control.state import ControlState, Pin
from shieldwall.control.status import StatusBook
from shieldwall.core.clock import Clock
from shieldwall.detector.config import DetectorConfig
from shieldwall.detector.counters import Answered, Second, WorkerSecond, merge
from shieldwall.detector.detector import Detector
from shieldwall.detector.events import Event, Mode
from shieldwall.detector.features import Features
from shieldwall.detector.incidents import Incident
from shieldwall.detector.signatures import Signature, SignatureSet, mine
from shieldwall.report.facts import Action

log = logging.getLogger("shieldwall.control")

SIGNATURE_EVENT = "signature"  # an incident timeline event: a signature was put in force
BAN_WAVE_EVENT = "ban_wave"  # an incident timeline event: many clients banned at once
BAN_WAVE = 10  # automatic bans in one second that make a wave
MINE_EVERY = 5.0  # seconds between mining runs while under attack
BASELINE_SAMPLE = 5000  # feature vectors kept from calm seconds
ATTACK_SAMPLE = 5000  # feature vectors kept since the mode left NORMAL
BASELINE_DELAY = 5  # calm seconds a second's sample waits before it joins the baseline sample
ANSWERS_KEPT = 200_000  # reference IDs an operator can look up (a few minutes of a large flood's refusals)
_STALE = 3.0  # a worker's second older than this when it arrives is dropped


@dataclass(slots=True)
class Tick:
    state: ControlState | None  # the new state when it changed (write it), else None
    events: list[Event] = field(default_factory=list)
    closed: list[Incident] = field(default_factory=list)  # save these: they are final
    open: Incident | None = None  # the open incident, to save now and then


class ControlLoop:
    def __init__(
        self,
        config: DetectorConfig,
        *,
        signatures: bool = True,
        signature_ttl: float = 120.0,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        route_labels: tuple[str, ...] = (),
    ) -> None:
        """`route_labels`: the [detector] route_classes, naming the workers' route counters."""
        self.detector = Detector(config)
        self.config = config
        self.mine_signatures = signatures
        self.signatures = SignatureSet(ttl=signature_ttl)
        self._clock = clock  # for the miner's time budget (None: no budget, e.g. in tests)
        self._rng = rng or random.Random()
        self._inbox: list[WorkerSecond] = []
        self._baseline: deque[Features] = deque(maxlen=BASELINE_SAMPLE)
        self._attack: deque[Features] = deque(maxlen=ATTACK_SAMPLE)
        self._pending: deque[list[Features]] = deque()
        self._next_mining = 0.0
        self._state = ControlState()
        self.last_second: Second | None = None
        self.status = StatusBook(route_labels)
        self.facts = FactsBook()
        self._answers: OrderedDict[str, Answered] = OrderedDict()
        self._totals: dict[str, int] = {}  # the workers' summed running totals at the last tick

    @property
    def state(self) -> ControlState:
        return self._state

    def receive(self, payload: bytes) -> None:
        """One worker's message; a damaged one is dropped (and logged) rather than stopping the loop."""
        try:
            self.take(WorkerSecond.from_bytes(payload))
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("dropped a damaged telemetry message: %s", exc)

    def take(self, second: WorkerSecond) -> None:
        """One worker's second, already parsed (and, from another node, on this node's clock)."""
        self._inbox.append(second)

    def pin(self, pin: Pin, now: float, now_wall: float) -> list[Event]:
        """Apply an operator's pin (or unpin) now; `pin.until` is wall-clock."""
        if pin.mode is None:
            self.facts.note(Action(now_wall, "lifted the mode pin", pin.by))
            return self.detector.unpin(now, now_wall)
        until = None if pin.until is None else now + max(0.0, pin.until - now_wall)
        reason = f"pinned by {pin.by}" + (f": {pin.reason}" if pin.reason else "")
        self.facts.note(Action(now_wall, f"pinned the mode to {pin.mode.value}", pin.by))
        return self.detector.pin(pin.mode, until, now, now_wall, reason)

    def tick(self, now: float, now_wall: float) -> Tick:
        parts = [part for part in self._inbox if now - part.started - 1.0 <= _STALE]
        self._inbox.clear()
        if not parts:  # workers send every second, busy or not: none means they are (re)starting
            return Tick(None, open=self.detector.incident)
        second = merge(
            parts, top_size=self.config.top_reported, sample_size=self.config.sample_size, rng=self._rng
        )
        second = replace(second, at=now)
        self.last_second = second
        before = self.detector.mode
        events = self.detector.observe(second, now_wall)
        mode = self.detector.mode
        features = [Features(*vector) for vector in second.sample]
        if mode is Mode.NORMAL and self.detector.status().level == 0:
            # A calm second joins the baseline sample only after BASELINE_DELAY more calm seconds: the
            # first seconds of a flood, before the ladder climbs, must not teach the miner that the
            # flood is normal traffic.
            self._pending.append(features)
            if len(self._pending) > BASELINE_DELAY:
                self._baseline.extend(self._pending.popleft())
            if before is not Mode.NORMAL:
                self._attack.clear()
        else:
            self._pending.clear()
            if mode is not Mode.NORMAL:
                self._attack.extend(features)
        self._totals_seen(second, now, now_wall, events)
        for answer in second.answered:
            self._answers[answer.ref] = answer
        while len(self._answers) > ANSWERS_KEPT:
            self._answers.popitem(last=False)
        closed = self.detector.pop_closed()
        if closed:
            self.signatures.end_incident()
        signatures_changed = self._mine(now, now_wall, events) if mode is not Mode.NORMAL else False
        signatures_changed |= bool(self.signatures.expire(now_wall))
        incident = self.detector.incident
        state = ControlState(
            mode=mode,
            pinned=self.detector.ladder.pinned is not None,
            incident=None if incident is None else incident.id,
            signatures=self.signatures.active,
            updated=now_wall,
        )
        changed = (state.mode, state.pinned, state.incident) != (
            self._state.mode,
            self._state.pinned,
            self._state.incident,
        ) or signatures_changed
        self._state = state
        self.status.update(second, self.detector, state.signatures, now_wall)
        self.facts.second(second, incident)
        pinned = {sig.id for sig in state.signatures if self.signatures.is_pinned(sig.id)}
        self.facts.signatures(state.signatures, pinned, now_wall)
        return Tick(state if changed else None, events, closed, incident)

    def _totals_seen(self, second: Second, now: float, now_wall: float, events: list[Event]) -> None:
        """What the workers' running totals say happened this second: signatures that still match live
        on; a wave of automatic bans goes into the incident's timeline."""
        stats = second.stats
        matched = {}
        for key, total in stats.items():
            if key.startswith("signature."):
                name = key[len("signature.") :]
                matched[name] = total - self._totals.get(key, 0)
                self._totals[key] = total
        if matched:
            self.signatures.report_matches(matched, now_wall)
        made = stats.get("bans.made", 0)
        new_bans, self._totals["bans.made"] = made - self._totals.get("bans.made", made), made
        if new_bans >= BAN_WAVE and self.detector.incident is not None:
            words = f"ban wave: {new_bans} clients banned in one second"
            events.append(self.detector.note(Event(BAN_WAVE_EVENT, now, now_wall, reason=words)))

    def lookup(self, ref: str) -> Answered | None:
        """What the shield answered to the request with this reference ID, if it was recent enough."""
        return self._answers.get(ref)

    def _mine(self, now: float, now_wall: float, events: list[Event]) -> bool:
        """Mine signatures (every MINE_EVERY s); each new one goes into the incident's timeline too."""
        if not self.mine_signatures or now < self._next_mining or not self._attack or not self._baseline:
            return False
        self._next_mining = now + MINE_EVERY
        baseline_rps = self.detector.baseline.means().get("rps", 0.0)
        current = self.last_second.rps if self.last_second is not None else 0.0
        legit_share = min(1.0, baseline_rps / current) if current > 0 else 0.0
        found: list[Signature] = mine(
            list(self._baseline),
            list(self._attack),
            now=now_wall,
            ttl=self.signatures.ttl,
            legit_share=legit_share,
            clock=self._clock,
        )
        added = self.signatures.propose(found, now_wall)
        for signature in added:
            words = (
                f"signature {signature.id} ({signature.action}): {signature.describe()}; covers "
                f"{signature.coverage:.0%} of the attack, {signature.collateral:.2%} of normal traffic"
            )
            log.warning("%s", words)
            events.append(self.detector.note(Event(SIGNATURE_EVENT, now, now_wall, reason=words)))
        return bool(found)
