"""Prometheus metrics, built at each scrape from what the control process already knows: nothing on the
request path counts anything for them.

Two sources:
- `Totals`: the merged second of every tick (requests by outcome, origin responses by status class,
  the origin latency histogram, connections, bytes), added up since this control process started.
  They are counters: a restart of the control process starts them again from zero, which Prometheus'
  `rate()` and `increase()` treat as a counter reset.
- the status snapshot (control/status.py) for gauges (mode, incident, in-flight requests, admission,
  cache size...) and the workers' own totals in its "stats" (refusals by reason, cache hits...), summed
  over the workers; a restarted worker starts its totals again, another counter reset.

Names follow Prometheus' conventions: `shieldwall_` prefix, base units (seconds, bytes), `_total` on
counters. docs/admin-api.md lists them all; contrib/grafana/shieldwall.json charts them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from shieldwall import __version__
from shieldwall.control.loop import ControlLoop
from shieldwall.detector.counters import LATENCY_BOUNDS, LATENCY_BUCKETS, Outcome, Second
from shieldwall.detector.events import Mode

# Every other bound of the detector's histogram (a factor of 2: 1 ms to 131 s): enough for
# histogram_quantile(), at half the series.
HISTOGRAM_EVERY: Final = 2
STATUS_CLASSES: Final = ("1xx", "2xx", "3xx", "4xx", "5xx")

# The workers' counters in the snapshot's "stats": key → (metric, help). Keys starting with "refused."
# become shieldwall_refusals_total{reason=...}.
STAT_COUNTERS: Final[Mapping[str, tuple[str, str]]] = {
    "cache.hits": ("shieldwall_cache_hits", "Requests answered from a fresh cached copy."),
    "cache.stale_served": ("shieldwall_cache_stale_served", "Requests answered from a stale copy."),
    "cache.misses": ("shieldwall_cache_misses", "Cacheable requests that went to the origin."),
    "cache.refreshes": ("shieldwall_cache_refreshes", "Background refreshes of stale entries."),
    "cache.coalesced": ("shieldwall_cache_coalesced", "Requests that waited for an identical fetch."),
    "cache.bypassed": ("shieldwall_cache_bypassed", "Requests the cache did not look up (cookies...)."),
    "cache.stored": ("shieldwall_cache_stored", "Responses stored."),
    "cache.uncacheable": ("shieldwall_cache_uncacheable", "Responses the origin did not let us store."),
    "cache.too_big": ("shieldwall_cache_too_big", "Responses larger than cache.max_object_bytes."),
    "cache.evictions": ("shieldwall_cache_evictions", "Entries evicted to stay within cache.max_bytes."),
    "cache.coalesce_timeouts": (
        "shieldwall_cache_coalesce_timeouts",
        "Waits for an identical fetch that timed out.",
    ),
    "telemetry.seconds_dropped": (
        "shieldwall_telemetry_seconds_dropped",
        "Seconds of counts workers could not hand to a busy or absent control process.",
    ),
    "telemetry.answered_dropped": (
        "shieldwall_telemetry_answers_dropped",
        "Refusals beyond the reference IDs kept for lookups.",
    ),
    "cluster.limits.synced": (
        "shieldwall_cluster_limit_syncs",
        "Syncs of the cluster-scoped limits with Redis that it answered.",
    ),
    "cluster.limits.errors": (
        "shieldwall_cluster_limit_sync_errors",
        "Syncs of the cluster-scoped limits that failed or timed out (each worker then limits alone).",
    ),
    "cluster.limits.deferred": (
        "shieldwall_cluster_limit_keys_deferred",
        "Buckets a sync left for a later one (more than a sync carries).",
    ),
    "cluster.limits.untallied": (
        "shieldwall_cluster_limit_untallied",
        "Admissions not shared with the cluster: a rule's tally of buckets was full.",
    ),
}
# The workers' gauges in "stats", summed over the workers: key → (metric, help).
STAT_GAUGES: Final[Mapping[str, tuple[str, str]]] = {
    "connections.open": ("shieldwall_open_connections", "Client connections open now."),
    "upstream.pool_busy": ("shieldwall_upstream_connections_busy", "Origin connections carrying a request."),
    "upstream.pool_idle": ("shieldwall_upstream_connections_idle", "Origin connections idle in the pools."),
    "admission.limit": ("shieldwall_admission_limit", "Requests the origin may get at once (all workers)."),
    "admission.in_flight": ("shieldwall_admission_in_flight", "Requests admitted to the origin now."),
    "admission.queued": ("shieldwall_admission_queued", "Requests waiting in the admission queue."),
    "cache.bytes_stored": ("shieldwall_cache_bytes", "Bytes of the stored responses."),
    "cache.entries": ("shieldwall_cache_entries", "Responses stored."),
    "cluster.limits.lost": (
        "shieldwall_cluster_limit_redis_lost",
        "Workers whose last sync of the cluster-scoped limits failed: they limit on their own buckets.",
    ),
}


class Totals:
    """The counts of every merged second since this control process started."""

    def __init__(self) -> None:
        self.seconds = 0
        self.by_outcome = [0] * len(Outcome)
        self.by_status = [0] * len(STATUS_CLASSES)
        self.latency = [0] * LATENCY_BUCKETS
        self.new_connections = 0
        self.bytes_in = 0
        self.bytes_out = 0
        self._last: Second | None = None

    def add(self, second: Second | None) -> None:
        """Count `second` (the ControlLoop's `last_second` after a tick) unless it was counted already:
        a tick without workers' messages leaves the previous one in place."""
        if second is None or second is self._last:
            return
        self._last = second
        self.seconds += 1
        for totals, counts in (
            (self.by_outcome, second.by_outcome),
            (self.by_status, second.by_status),
            (self.latency, second.latency),
        ):
            for index, count in enumerate(counts[: len(totals)]):
                totals[index] += count
        self.new_connections += second.new_connections
        self.bytes_in += second.bytes_in
        self.bytes_out += second.bytes_out


class ShieldCollector(Collector):
    """A prometheus-client collector over the control process's state, read at each scrape."""

    def __init__(self, control: ControlLoop, totals: Totals) -> None:
        self.control = control
        self.totals = totals

    def collect(self) -> Iterator[Any]:
        yield from self._totals()
        yield from self._state()
        yield from self._worker_stats(self.control.status.snapshot)

    def _totals(self) -> Iterator[Any]:
        totals = self.totals
        requests = CounterMetricFamily(
            "shieldwall_requests", "Requests by what the shield did with them.", labels=["outcome"]
        )
        for outcome in Outcome:
            requests.add_metric([outcome.name.lower()], totals.by_outcome[outcome])
        yield requests
        responses = CounterMetricFamily(
            "shieldwall_origin_responses", "Origin responses by status class.", labels=["code"]
        )
        for name, count in zip(STATUS_CLASSES, totals.by_status, strict=True):
            responses.add_metric([name], count)
        yield responses
        yield HistogramMetricFamily(
            "shieldwall_origin_latency_seconds",
            "Time from sending a request to the origin to its response head.",
            buckets=latency_buckets(totals.latency),
            sum_value=None,  # the workers count buckets, not the sum
        )
        yield CounterMetricFamily(
            "shieldwall_client_connections", "Client connections accepted.", value=totals.new_connections
        )
        yield CounterMetricFamily(
            "shieldwall_client_received_bytes", "Bytes read from clients.", value=totals.bytes_in
        )
        yield CounterMetricFamily(
            "shieldwall_client_sent_bytes", "Bytes sent to clients.", value=totals.bytes_out
        )
        yield CounterMetricFamily(
            "shieldwall_telemetry_seconds",
            "Seconds of traffic the control process merged.",
            value=totals.seconds,
        )

    def _state(self) -> Iterator[Any]:
        control = self.control
        detector = control.detector
        info = GaugeMetricFamily("shieldwall_build_info", "The running version.", labels=["version"])
        info.add_metric([__version__], 1)
        yield info
        # In force: the node's own detector's decision, or with [cluster] the cluster's, which the
        # status snapshot then holds (control/status.py StatusBook.applied).
        snapshot = control.status.snapshot
        clustered = "cluster" in control.status.extra
        in_force = Mode(snapshot.get("mode", "normal")) if clustered else detector.mode
        mode = GaugeMetricFamily(
            "shieldwall_mode", "1 for the mode in force, 0 for the others.", labels=["mode"]
        )
        for candidate in Mode:
            mode.add_metric([candidate.value], 1 if in_force is candidate else 0)
        yield mode
        pinned = snapshot.get("pinned", False) if clustered else detector.ladder.pinned is not None
        yield GaugeMetricFamily(
            "shieldwall_mode_pinned", "1 while an operator's pin holds the mode.", value=1 if pinned else 0
        )
        incident = snapshot.get("incident") if clustered else detector.incident
        yield GaugeMetricFamily(
            "shieldwall_incident_open", "1 while an incident is open.", value=0 if incident is None else 1
        )
        actions = (
            [str(entry["action"]) for entry in snapshot.get("signatures", ())]
            if clustered
            else [sig.action for sig in control.signatures.active]
        )
        signatures = GaugeMetricFamily(
            "shieldwall_signatures_active", "Attack signatures in force, by action.", labels=["action"]
        )
        for action in ("block", "challenge"):
            signatures.add_metric([action], actions.count(action))
        yield signatures
        yield GaugeMetricFamily(
            "shieldwall_detector_baseline_ready",
            "1 once the detector has learnt the usual traffic.",
            value=1 if detector.baseline.ready else 0,
        )
        firewall = control.status.extra.get("firewall")  # only while [firewall] nftables is on
        if firewall is not None:
            yield GaugeMetricFamily(
                "shieldwall_firewall_mirror_ok",
                "1 while the nftables mirror of the bans works (its last nft run succeeded).",
                value=1 if firewall["ok"] else 0,
            )
            yield GaugeMetricFamily(
                "shieldwall_firewall_elements",
                "Banned addresses and prefixes in the nftables sets, which the kernel drops.",
                value=firewall["elements"],
            )
        yield from _cluster_link(control.status.extra.get("cluster"))
        now: Mapping[str, Any] = snapshot.get("now", {})
        origin: Mapping[str, Any] = now.get("origin", {})
        for name, help_text, value in (
            ("shieldwall_origin_inflight", "Requests at the origin now.", origin.get("inflight", 0)),
            (
                "shieldwall_distinct_clients",
                "Distinct client addresses in the last second (estimate).",
                now.get("distinct_clients", 0),
            ),
            ("shieldwall_workers_reporting", "Workers whose last second arrived.", now.get("workers", 0)),
            (
                "shieldwall_last_second_timestamp_seconds",
                "When the last merged second was judged (Unix time); stale if workers stopped reporting.",
                snapshot.get("wall", 0),
            ),
        ):
            yield GaugeMetricFamily(name, help_text, value=value)

    def _worker_stats(self, snapshot: Mapping[str, Any]) -> Iterator[Any]:
        stats: Mapping[str, int] = snapshot.get("stats", {})
        refusals = CounterMetricFamily(
            "shieldwall_refusals",
            "Requests and connections the workers refused, by reason (totals since each worker started).",
            labels=["reason"],
        )
        for key, value in sorted(stats.items()):
            if key.startswith("refused."):
                refusals.add_metric([key.removeprefix("refused.")], value)
        yield refusals
        for key, (name, help_text) in STAT_COUNTERS.items():
            if key in stats:
                yield CounterMetricFamily(name, help_text, value=stats[key])
        for key, (name, help_text) in STAT_GAUGES.items():
            if key in stats:
                yield GaugeMetricFamily(name, help_text, value=stats[key])
        workers = max(1, int(snapshot.get("now", {}).get("workers", 0) or 1))
        if "bans.entries" in stats:  # every worker holds every ban: the average is the store's count
            yield GaugeMetricFamily(
                "shieldwall_bans_active",
                "Bans in force (entries in a worker's ban table).",
                value=stats["bans.entries"] / workers,
            )


def _cluster_link(link: Mapping[str, Any] | None) -> Iterator[Any]:
    """The node's link to the cluster (control/cluster_agent.py), only with `[cluster]`."""
    if link is None:
        return
    yield GaugeMetricFamily(
        "shieldwall_cluster_redis_up",
        "1 while this node's control process reaches the cluster's Redis; 0: degraded, it protects alone.",
        value=0 if link["degraded"] else 1,
    )
    yield GaugeMetricFamily(
        "shieldwall_cluster_leader", "1 while this node leads the cluster.", value=link["role"] == "leader"
    )
    yield GaugeMetricFamily(
        "shieldwall_cluster_nodes",
        "Nodes alive by their heartbeats (0 while Redis is lost).",
        len(link["nodes"]),
    )
    yield CounterMetricFamily(
        "shieldwall_cluster_redis_losses", "Times this node lost the cluster's Redis.", value=link["losses"]
    )
    yield CounterMetricFamily(
        "shieldwall_cluster_bans_published",
        "Bans this node sent to the cluster.",
        value=link["bans_published"],
    )
    yield CounterMetricFamily(
        "shieldwall_cluster_bans_received",
        "Bans other nodes sent that this node took.",
        value=link["bans_received"],
    )


def latency_buckets(histogram: list[int]) -> list[tuple[str, float]]:
    """Cumulative (le, count) pairs over every HISTOGRAM_EVERY-th bound, and +Inf."""
    buckets = []
    running = 0
    for index, count in enumerate(histogram):
        running += count
        if index < len(LATENCY_BOUNDS) and index % HISTOGRAM_EVERY == 0:
            buckets.append((f"{LATENCY_BOUNDS[index]:.6g}", float(running)))
    buckets.append(("+Inf", float(running)))
    return buckets


def registry(control: ControlLoop, totals: Totals) -> CollectorRegistry:
    """A registry of its own (not the global one): only the shield's metrics, no process metrics."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ShieldCollector(control, totals))
    return registry


def exposition(registry: CollectorRegistry) -> bytes:
    """The Prometheus text format (version 0.0.4)."""
    return generate_latest(registry)
