"""/metrics: the Prometheus text format, parsed back with prometheus_client's own parser; counters that
add up what the workers sent, gauges for the state, the token only when the config asks for it, and a
Grafana dashboard (contrib/) that asks for no metric the shield does not expose."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from admin_rig import AdminRig
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from shieldwall.admin.metrics import STAT_COUNTERS, STAT_GAUGES, latency_buckets
from shieldwall.detector.counters import LATENCY_BOUNDS, LATENCY_BUCKETS, latency_bucket
from shieldwall.detector.events import Mode


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[AdminRig]:
    made = AdminRig(tmp_path)
    yield made
    made.close()


def scrape(rig: AdminRig, **headers: str) -> dict[str, list[Sample]]:
    response = rig.client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: dict[str, list[Sample]] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def value(samples: dict[str, list[Sample]], name: str, **labels: str) -> float:
    [found] = [sample.value for sample in samples[name] if sample.labels == labels]
    return found


def test_counters_add_up_every_second_the_workers_sent(rig: AdminRig) -> None:
    rig.second(allow=20, block=3)
    rig.second(allow=11, block=0)
    rig.control.tick(rig.now + 1, 0.0)  # a tick without messages: its (old) second is not counted again
    rig.admin.totals.add(rig.control.last_second)
    samples = scrape(rig)
    assert value(samples, "shieldwall_requests_total", outcome="allow") == 31
    assert value(samples, "shieldwall_requests_total", outcome="block") == 3
    assert value(samples, "shieldwall_requests_total", outcome="shed") == 0
    assert value(samples, "shieldwall_origin_responses_total", code="2xx") == 31
    assert value(samples, "shieldwall_telemetry_seconds_total") == 2
    buckets = [
        (sample.labels["le"], sample.value) for sample in samples["shieldwall_origin_latency_seconds_bucket"]
    ]
    assert buckets[-1] == ("+Inf", 31)
    assert [count for _, count in buckets] == sorted(count for _, count in buckets)  # cumulative
    # latencies were 3..30 ms: none at or under 2 ms, all under 32 ms
    assert value(samples, "shieldwall_origin_latency_seconds_bucket", le="0.002") == 0
    assert value(samples, "shieldwall_origin_latency_seconds_bucket", le="0.032") == 31


def test_gauges_show_the_mode_the_incident_and_the_workers_state(rig: AdminRig) -> None:
    stats = {
        "refused.rule": 7,
        "refused.banned": 2,
        "admission.queued": 4,
        "admission.limit": 64,
        "cache.hits": 9,
        "cache.bytes_stored": 1234,
        "bans.entries": 5,
        "something.new": 1,
    }
    rig.second(allow=5, stats=stats)
    rig.admin.operator.pin(Mode.UNDER_ATTACK, 600.0, "test")
    samples = scrape(rig)
    assert value(samples, "shieldwall_mode", mode="under_attack") == 1
    assert value(samples, "shieldwall_mode", mode="normal") == 0
    assert value(samples, "shieldwall_mode_pinned") == 1
    assert value(samples, "shieldwall_incident_open") == 1
    assert value(samples, "shieldwall_refusals_total", reason="rule") == 7
    assert value(samples, "shieldwall_refusals_total", reason="banned") == 2
    assert value(samples, "shieldwall_admission_queued") == 4
    assert value(samples, "shieldwall_admission_limit") == 64
    assert value(samples, "shieldwall_cache_hits_total") == 9
    assert value(samples, "shieldwall_cache_bytes") == 1234
    assert value(samples, "shieldwall_bans_active") == 5
    assert value(samples, "shieldwall_workers_reporting") == 1
    assert value(samples, "shieldwall_signatures_active", action="block") == 0
    assert value(samples, "shieldwall_last_second_timestamp_seconds") == rig.control.status.snapshot["wall"]
    assert not any("something" in name for name in samples)  # unknown stats are not guessed at


def test_before_any_second_the_metrics_still_parse(rig: AdminRig) -> None:
    samples = scrape(rig)
    assert value(samples, "shieldwall_requests_total", outcome="allow") == 0
    assert value(samples, "shieldwall_mode", mode="normal") == 1
    assert "shieldwall_refusals_total" not in samples


def test_metrics_are_open_unless_the_config_asks_for_the_token(tmp_path: Path) -> None:
    rig = AdminRig(tmp_path, {"admin": {"metrics_need_token": True}})
    try:
        refused = rig.client.get("/metrics")
        assert refused.status_code == 401
        assert "error" in refused.json()
        assert scrape(rig, Authorization=f"Bearer {rig.token}")["shieldwall_mode"]
    finally:
        rig.close()


def test_latency_buckets_are_cumulative_at_every_other_bound() -> None:
    histogram = [0] * LATENCY_BUCKETS
    for seconds in (0.0005, 0.0015, 0.05, 500.0):
        histogram[latency_bucket(seconds)] += 1
    buckets = dict(latency_buckets(histogram))
    assert len(buckets) == len(LATENCY_BOUNDS[::2]) + 1
    assert (buckets["0.001"], buckets["0.002"], buckets["0.064"], buckets["131.072"]) == (1, 2, 3, 3)
    assert buckets["+Inf"] == 4


def test_the_grafana_dashboard_uses_only_metrics_the_shield_exposes(rig: AdminRig) -> None:
    dashboard = json.loads(
        (Path(__file__).parents[2] / "contrib" / "grafana" / "shieldwall.json").read_text()
    )
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]
    expressions += [annotation["expr"] for annotation in dashboard["annotations"]["list"]]
    used = {name for expr in expressions for name in re.findall(r"\bshieldwall_[a-z_]+", expr)}
    every_stat = dict.fromkeys([*STAT_COUNTERS, *STAT_GAUGES, "refused.rule", "bans.entries"], 1)
    rig.second(stats=every_stat)
    exposed = set(scrape(rig))
    assert used, "no shieldwall_ metric found in the dashboard"
    assert used <= exposed, used - exposed
