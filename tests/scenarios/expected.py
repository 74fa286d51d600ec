"""What a scenario expects of the detector (`expected.toml` or `.json`), and the check of a run against it.

Every expectation is optional; `check()` returns every one that failed, in words, so one run shows all
that is wrong. The format is described in README.md next to this file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from scenarios.documents import REQUIRED, ScenarioError, Table, read_document
from shieldwall.detector.events import Mode
from shieldwall.detector.features import FEATURE_NAMES

if TYPE_CHECKING:
    from scenarios.runner import Result, SeenSignature

_MODES = tuple(mode.value for mode in Mode)
_PHASE_BOUNDS = ("min_mitigated_share", "max_mitigated_share", "max_blocked_share", "min_signature_share")
_TIMINGS = ("detect", "under_attack", "normal", "closed")
Window = tuple[float, float]


@dataclass(frozen=True)
class ChangeSpec:
    to: Mode
    between: Window
    reason: str | None  # words the change's reason must contain


@dataclass(frozen=True)
class DuringSpec:
    start: int
    end: int
    mode: Mode | None  # exactly this mode...
    at_least: Mode | None  # ...or at least this one
    at_most: Mode | None  # ...and/or at most this one

    def allows(self, mode: Mode) -> bool:
        return not (
            (self.mode is not None and mode is not self.mode)
            or (self.at_least is not None and mode.level < self.at_least.level)
            or (self.at_most is not None and mode.level > self.at_most.level)
        )

    def __str__(self) -> str:
        wanted = [
            f"{word} {mode}"
            for word, mode in (("exactly", self.mode), ("at least", self.at_least), ("at most", self.at_most))
            if mode is not None
        ]
        return f"from t={self.start} to t={self.end}: {', '.join(wanted)}"


@dataclass(frozen=True)
class SignatureSpec:
    conditions: dict[str, str]  # (feature, value) pairs the signature must hold
    features: tuple[str, ...]  # features it must have a condition on, whatever the value
    action: str | None
    by: float | None  # in force at or before this t

    def fits(self, signature: SeenSignature) -> bool:
        return (
            all(signature.conditions.get(name) == value for name, value in self.conditions.items())
            and all(name in signature.conditions for name in self.features)
            and (self.action is None or signature.action == self.action)
        )

    def __str__(self) -> str:
        words = [f"{name}={value!r}" for name, value in self.conditions.items()]
        words += [f"{name}=*" for name in self.features]
        return f"{self.action or 'any action'} on {' and '.join(words) or 'anything'}"


class Expected:
    def __init__(self, data: dict[str, object], where: str) -> None:
        top = Table(data, where)
        self.xfail: str | None = top.text("xfail", None)
        modes = top.table("modes")
        self.never_above = _mode(modes, "never_above")
        self.final = _mode(modes, "final")
        self.changes = [_change(item) for item in modes.tables("changes")]
        self.during = [self._during(item) for item in modes.tables("during")]
        modes.done()
        timings = top.table("timings")
        self.max_timings = {name: timings.number(f"max_{name}", None, minimum=0.0) for name in _TIMINGS}
        timings.done()
        signatures = top.table("signatures")
        self.required = [_signature(item) for item in signatures.tables("required")]
        self.forbidden = [_signature(item) for item in signatures.tables("forbidden")]
        signatures.done()
        incidents = top.table("incidents")
        self.incident_count: int | None = incidents.integer("count", None, minimum=0)
        self.opened = incidents.window("opened_between")
        self.closed = incidents.window("closed_between")
        self.peak_mode = _mode(incidents, "peak_mode")
        incidents.done()
        phases = top.table("phases")
        self.phases: dict[str, dict[str, float]] = {}
        for name in list(phases.keys()):
            item = phases.table(name)
            bounds = {key: item.number(key, None, minimum=0.0) for key in _PHASE_BOUNDS}
            self.phases[name] = {key: value for key, value in bounds.items() if value is not None}
            item.done()
        top.done()

    @staticmethod
    def load(folder: Path) -> Expected:
        data, name = read_document(folder, "expected")
        return Expected(data, f"{folder.name}/{name}")

    @staticmethod
    def _during(item: Table) -> DuringSpec:
        spec = DuringSpec(
            item.integer("from", REQUIRED, minimum=1),
            item.integer("to", REQUIRED, minimum=1),
            _mode(item, "mode"),
            _mode(item, "at_least"),
            _mode(item, "at_most"),
        )
        if spec.end < spec.start or (spec.mode is None and spec.at_least is None and spec.at_most is None):
            raise ScenarioError(f"{item.where}: needs from <= to and one of mode, at_least, at_most")
        item.done()
        return spec

    def check(self, result: Result) -> list[str]:
        """Every expectation the run did not meet, in words (empty: all met)."""
        problems = self._check_modes(result) + self._check_timings(result)
        problems += self._check_signatures(result) + self._check_incidents(result)
        for name, bounds in self.phases.items():
            tally = result.phases.get(name)
            if tally is None:
                problems.append(f"phases.{name}: no such phase in the traffic")
                continue
            by_signature = tally.by_signature / tally.requests if tally.requests else 0.0
            shares = {
                "min_mitigated_share": tally.mitigated_share,
                "max_mitigated_share": tally.mitigated_share,
                "max_blocked_share": tally.blocked_share,
                "min_signature_share": by_signature,
            }
            for key, bound in bounds.items():
                share = shares[key]
                if (share < bound) if key.startswith("min") else (share > bound):
                    problems.append(f"phases.{name}.{key} is {bound:g} but the share was {share:.4f}")
        return problems

    def _check_modes(self, result: Result) -> list[str]:
        problems = []
        highest = max((tick.mode for tick in result.ticks), key=lambda mode: mode.level)
        if self.never_above is not None and highest.level > self.never_above.level:
            at = next(tick.t for tick in result.ticks if tick.mode is highest)
            problems.append(f"modes.never_above is {self.never_above} but the mode was {highest} at t={at}")
        if self.final is not None and result.ticks[-1].mode is not self.final:
            problems.append(f"modes.final is {self.final} but the run ended in {result.ticks[-1].mode}")
        if self.changes:
            seen = [f"{change.new}@t={change.t}" for change in result.changes]
            if [change.new for change in result.changes] != [spec.to for spec in self.changes]:
                wanted = [f"{spec.to}@{spec.between}" for spec in self.changes]
                problems.append(f"modes.changes: expected {wanted}, got {seen}")
            else:
                for spec, change in zip(self.changes, result.changes, strict=True):
                    if not spec.between[0] <= change.t <= spec.between[1]:
                        problems.append(f"modes.changes: to {spec.to} at t={change.t}, not in {spec.between}")
                    if spec.reason is not None and spec.reason not in change.reason:
                        problems.append(
                            f"modes.changes: to {spec.to} without {spec.reason!r}: {change.reason}"
                        )
        for during in self.during:
            for tick in result.ticks[during.start - 1 : during.end]:
                if not during.allows(tick.mode):
                    problems.append(f"modes.during {during}: the mode was {tick.mode} at t={tick.t}")
                    break
        return problems

    def _check_timings(self, result: Result) -> list[str]:
        problems = []
        for name, bound in self.max_timings.items():
            if bound is None:
                continue
            value = getattr(result.timings, name)
            if value is None or value > bound:
                shown = "never" if value is None else f"{value} s"
                problems.append(f"timings.max_{name} is {bound:g} s but it took {shown}")
        return problems

    def _check_signatures(self, result: Result) -> list[str]:
        problems = []
        seen = list(result.signatures.values())
        listed = "; ".join(f"{sig.action} {sig.conditions} from t={sig.first}" for sig in seen) or "none"
        for spec in self.required:
            fitting = [sig for sig in seen if spec.fits(sig)]
            if not fitting:
                problems.append(f"signatures.required: no {spec} (mined: {listed})")
            elif spec.by is not None and min(sig.first for sig in fitting) > spec.by:
                first = min(sig.first for sig in fitting)
                problems.append(f"signatures.required: {spec} in force only at t={first}, not by {spec.by:g}")
        for spec in self.forbidden:
            for sig in seen:
                if spec.fits(sig):
                    problems.append(f"signatures.forbidden: {spec} was mined: {sig.action} {sig.conditions}")
        return problems

    def _check_incidents(self, result: Result) -> list[str]:
        problems = []
        incidents = result.incidents
        if self.incident_count is not None and len(incidents) != self.incident_count:
            problems.append(f"incidents.count is {self.incident_count} but {len(incidents)} opened")
        if not incidents:
            return problems
        first, last = incidents[0], incidents[-1]
        if self.opened is not None and not self.opened[0] <= first.opened <= self.opened[1]:
            problems.append(f"incidents.opened_between is {self.opened} but it opened at t={first.opened}")
        if self.closed is not None and (
            last.closed is None or not self.closed[0] <= last.closed <= self.closed[1]
        ):
            problems.append(f"incidents.closed_between is {self.closed} but it closed at t={last.closed}")
        peak = max((incident.peak_mode for incident in incidents), key=lambda mode: mode.level)
        if self.peak_mode is not None and peak is not self.peak_mode:
            problems.append(f"incidents.peak_mode is {self.peak_mode} but it was {peak}")
        return problems


def _mode(table: Table, key: str, *, required: bool = False) -> Mode | None:
    value = table.text(key, REQUIRED if required else None, choices=_MODES)
    return None if value is None else Mode(value)


def _change(table: Table) -> ChangeSpec:
    to = _mode(table, "to", required=True)
    between = table.window("between")
    if to is None or between is None:
        raise ScenarioError(f"{table.where}: needs to and between")
    reason = table.text("reason", None)
    table.done()
    return ChangeSpec(to, between, reason)


def _signature(table: Table) -> SignatureSpec:
    conditions = table.strings_by_name("conditions")
    features = tuple(table.strings("features"))
    for name in (*conditions, *features):
        if name not in FEATURE_NAMES:
            raise ScenarioError(f"{table.where}: {name!r} is not a feature ({', '.join(FEATURE_NAMES)})")
    spec = SignatureSpec(
        conditions,
        features,
        table.text("action", None, choices=("block", "challenge")),
        table.number("by", None, minimum=0.0),
    )
    table.done()
    return spec
