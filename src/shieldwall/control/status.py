"""What the operator's views show, as one JSON-able snapshot built by the control process once a
second: the admin API's /api/v1/status, the dashboard's live stream and `shieldwall top` all read this
one shape, so they always agree.

    {"version": 1, "wall": ..., "mode": "normal", "pinned": false, "incident": null,
     "detector": {...DetectorStatus.to_dict()...},
     "now": {"rps": ..., "legit_rps": ..., "mitigated_rps": ..., "by_outcome": {"allow": ...},
             "by_route": {"other": ..., "/search": ...},
             "origin": {"p50": s, "p95": s, "error_share": ..., "inflight": ...},
             "distinct_clients": ..., "new_connections": ...},
     "top": {"prefix": [[key, count], ...], "path": [...], "user_agent": [...], "client_ip": [...]},
     "signatures": [{"id", "action", "description", "coverage", "collateral", "expires"}],
     "stats": {"refused.rule": ..., "admission.queued": ..., "cache.hits": ..., ...},
     "history": [[wall, legit_rps, mitigated_rps, origin_p95, mode], ...],   # the last HISTORY seconds
     "firewall": {"table": "inet shieldwall", "ok": true, "elements": ..., "error": null, ...}}  # if on
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Final

from shieldwall.detector.counters import Outcome, Second
from shieldwall.detector.detector import Detector
from shieldwall.detector.signatures import Signature

if TYPE_CHECKING:
    from shieldwall.control.state import ControlState

VERSION: Final = 1
HISTORY: Final = 300  # seconds of history in each snapshot (five minutes at one point a second)
TOP: Final = 10


class StatusBook:
    """Keeps the history and builds the snapshot each tick."""

    def __init__(self, route_labels: tuple[str, ...] = ()) -> None:
        self.route_labels = ("other", *route_labels)  # by_route[i]'s name
        self.history: deque[tuple[float, float, float, float, str]] = deque(maxlen=HISTORY)
        self.snapshot: dict[str, Any] = {"version": VERSION, "mode": "normal", "history": []}
        # Sections other parts of the control process keep up to date, shown as they are in each
        # snapshot: "firewall" (control/firewall_mirror.py) while [firewall] nftables is on.
        self.extra: dict[str, dict[str, Any]] = {}

    def update(
        self, second: Second, detector: Detector, signatures: tuple[Signature, ...], wall: float
    ) -> dict[str, Any]:
        duration = second.duration
        status = detector.status()
        p95 = second.latency_quantile(0.95)
        self.history.append(
            (wall, second.legit / duration, second.mitigated / duration, p95, status.mode.value)
        )
        self.snapshot = {
            "version": VERSION,
            "wall": wall,
            "mode": status.mode.value,
            "pinned": status.pinned is not None,
            "incident": status.incident,
            "detector": status.to_dict(),
            "now": {
                "rps": second.rps,
                "legit_rps": second.legit / duration,
                "mitigated_rps": second.mitigated / duration,
                "by_outcome": {
                    outcome.name.lower(): count / duration
                    for outcome, count in zip(Outcome, second.by_outcome, strict=False)
                },
                "origin": {
                    "p50": second.latency_quantile(0.5),
                    "p95": p95,
                    "error_share": second.error_share,
                    "inflight": second.inflight,
                },
                "by_route": {
                    label: count / duration
                    for label, count in zip(self.route_labels, second.by_route, strict=False)
                },
                "distinct_clients": round(second.clients.estimate()),
                "new_connections": second.new_connections / duration,
                "workers": second.workers,
            },
            "top": {
                name: [[key, count] for key, count, _ in summary.entries[:TOP]]
                for name, summary in second.top.items()
            },
            "signatures": _signature_entries(signatures),
            "stats": dict(second.stats),
            "history": [list(point) for point in self.history],
            **self.extra,
        }
        return self.snapshot

    def applied(self, state: ControlState) -> None:
        """With `[cluster]`: what the node applies (the cluster's mode, pin, incident and signatures)
        replaces its own detector's in the snapshot and the last history row; the figures stay the
        node's own."""
        snapshot = self.snapshot
        snapshot["mode"], snapshot["pinned"] = state.mode.value, state.pinned
        snapshot["incident"] = state.incident
        snapshot["signatures"] = _signature_entries(state.signatures)
        if self.history:
            self.history[-1] = (*self.history[-1][:4], state.mode.value)
            snapshot["history"] = [list(point) for point in self.history]


def _signature_entries(signatures: tuple[Signature, ...]) -> list[dict[str, Any]]:
    return [
        {
            "id": sig.id,
            "action": sig.action,
            "description": sig.describe(),
            "coverage": sig.coverage,
            "collateral": sig.collateral,
            "expires": sig.expires,
        }
        for sig in signatures
    ]
