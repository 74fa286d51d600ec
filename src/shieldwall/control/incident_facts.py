"""The facts a report needs beyond the detector's incident, gathered by the control process while an
incident is open (report/facts.py says what each is): the signatures in force and when, the biggest
senders over the whole incident, what share of requests the origin answered well before and during it,
the challenges the shield answered, and what operators did. Bans are read from the ban store when the
facts are saved. Sans-io but for `save`, which stores the incident and its facts together."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Final

from shieldwall.detector.counters import Outcome, Second
from shieldwall.detector.features import FEATURE_NAMES
from shieldwall.detector.incidents import Incident
from shieldwall.detector.signatures import Signature
from shieldwall.detector.sketches import Summary
from shieldwall.net.ipdata import IpLookup
from shieldwall.report import store
from shieldwall.report.facts import (
    AUTOMATIC,
    Action,
    ImpactFacts,
    ReportFacts,
    SignatureRecord,
    TopEntry,
    TopSources,
    top_entries,
)
from shieldwall.state import ban_store

_HEADER_ORDER: Final = FEATURE_NAMES.index("header_order")
TOP_KEPT: Final = 256  # heavy hitters kept per dimension over the whole incident
# Header-order fingerprints counted per incident: a flood that randomises its header order must not grow
# the book without end; past this many, new fingerprints are left out (the top ones are in by then).
FINGERPRINTS_KEPT: Final = 4096
_DIMENSIONS: Final = {"prefix": "prefixes", "user_agent": "user_agents"}


class _Ratio:
    __slots__ = ("good", "total")

    def __init__(self) -> None:
        self.good = 0
        self.total = 0

    def add(self, second: Second) -> None:
        self.total += second.origin_responses
        self.good += second.origin_responses - second.by_status[4]

    @property
    def value(self) -> float | None:
        return self.good / self.total if self.total else None


class FactsBook:
    def __init__(self, ipdata: IpLookup | None = None) -> None:
        self.ipdata = ipdata  # the operator's ASN data ([client_data]), to name the networks behind prefixes
        self._before = _Ratio()  # the calm seconds before the current incident
        self._reset()

    def _reset(self) -> None:
        self._during = _Ratio()
        # Header-order fingerprints from the sampled requests, each counted for the requests it stands
        # for (the sample is uniform over the second's requests).
        self._fingerprints: dict[str, float] = {}
        self._top: dict[str, Summary] = {}
        self._requests = 0
        self._challenged = 0
        self._signatures: dict[str, SignatureRecord] = {}
        self._actions: list[Action] = []

    def second(self, second: Second, incident: Incident | None) -> None:
        if incident is None:
            self._before.add(second)
            return
        self._during.add(second)
        self._requests += second.requests
        self._challenged += second.by_outcome[Outcome.CHALLENGE]
        if second.sample:
            weight = second.sample_seen / len(second.sample)
            fingerprints = self._fingerprints
            for vector in second.sample:
                key = vector[_HEADER_ORDER]
                count = fingerprints.get(key)
                if count is not None:
                    fingerprints[key] = count + weight
                elif len(fingerprints) < FINGERPRINTS_KEPT:
                    fingerprints[key] = weight
        for name in _DIMENSIONS:
            part = second.top.get(name)
            if part is not None:
                kept = self._top.get(name)
                self._top[name] = part if kept is None else Summary.merge([kept, part], TOP_KEPT)

    def discard(self) -> None:
        """An incident closed that this book's process does not keep (with [cluster], the leader keeps
        the cluster's): start afresh, as a save would have."""
        self._reset()
        self._before = _Ratio()

    def signatures(self, active: tuple[Signature, ...], pinned: set[str], wall: float) -> None:
        for signature in active:
            record = self._signatures.get(signature.id)
            decided = "an operator" if signature.id in pinned else AUTOMATIC
            if record is None:
                self._signatures[signature.id] = SignatureRecord(signature, wall, wall, None, decided)
            else:
                self._signatures[signature.id] = replace(record, last_seen=wall, decided_by=decided)

    def note(self, action: Action) -> None:
        """Something an operator did (a pin, a signature pinned or rejected); kept for the open incident
        or, with none open, for the next one."""
        self._actions.append(action)

    def facts(self, incident: Incident, state_dir: Path, now_wall: float) -> ReportFacts:
        bans = tuple(
            ban for ban in ban_store.load_all(state_dir, now_wall).bans if ban.since >= incident.opened
        )
        top = TopSources(
            **{
                field: top_entries(self._top[name], total=self._requests)
                for name, field in _DIMENSIONS.items()
                if name in self._top
            },
            asns=self._asns(),
            fingerprints=tuple(
                TopEntry(value, round(count), count / self._requests if self._requests else 0.0)
                for value, count in sorted(self._fingerprints.items(), key=lambda kv: -kv[1])[:10]
            ),
        )
        return ReportFacts(
            signatures=tuple(self._signatures.values()),
            bans=bans,
            actions=tuple(self._actions),
            top=top,
            impact=ImpactFacts(
                success_rate=self._during.value,
                success_rate_before=self._before.value,
                challenges_issued=self._challenged,
            ),
        )

    def _asns(self) -> tuple[TopEntry, ...]:
        """The top prefixes' requests added up by the autonomous system of each prefix's first address,
        when the operator gave ASN data; () without it."""
        summary = self._top.get("prefix")
        if self.ipdata is None or summary is None:
            return ()
        by_asn: dict[int, list[Any]] = {}
        for prefix, count, _ in summary.entries:
            info = self.ipdata.lookup(prefix.partition("/")[0])
            if info is not None and info.asn:
                entry = by_asn.setdefault(info.asn, [0, info.as_name])
                entry[0] += count
        total = self._requests
        ranked = sorted(by_asn.items(), key=lambda item: -item[1][0])[:10]
        return tuple(
            TopEntry(f"AS{asn}", count, count / total if total else 0.0, name)
            for asn, (count, name) in ranked
        )

    def save(self, incident: Incident, state_dir: Path, now_wall: float) -> None:
        """Store the incident and its facts (report/store.py); after a closed one, start afresh.
        Raises IncidentStoreError (and keeps what it knows, to save at the next try)."""
        store.save(state_dir, incident, self.facts(incident, state_dir, now_wall), now=now_wall)
        if incident.closed is not None:
            self._reset()
            self._before = _Ratio()
