"""Per-second counters: what a worker counts, what survives the reset, the wire format, and the merge."""

from __future__ import annotations

import random

import pytest

from shieldwall.detector.counters import (
    LATENCY_BOUNDS,
    SKETCH_ALL,
    SKETCH_STRIDE,
    Outcome,
    SecondCounters,
    WorkerSecond,
    latency_bucket,
    latency_quantile,
    merge,
)
from shieldwall.detector.sketches import HyperLogLog


def busy_counters(worker: int, requests: int, seed: int = 1) -> SecondCounters:
    counters = SecondCounters(worker, 100.0, rng=random.Random(seed), sample_size=16, reported=8)
    for i in range(requests):
        outcome = Outcome.ALLOW if i % 4 else Outcome.CHALLENGE
        counters.request(i % 3, outcome)
        ip = f"10.{worker}.{i % 200 // 100}.{i % 100}"
        counters.sketch(ip, (ip, f"10.{worker}.{i % 200 // 100}.0/24", "/" if i % 10 else "/login", "curl/8"))
        if counters.sample.wants():
            counters.sample.put((str(worker), str(i)))
        if outcome is Outcome.ALLOW:
            counters.origin_start()
            counters.origin_done(500 if i % 50 == 1 else 200, 0.004 * (1 + i % 5))
    counters.new_connections += 7
    counters.bytes_in += 1000
    counters.bytes_out += 50_000
    return counters


def test_a_second_counts_what_the_data_plane_reported() -> None:
    second = busy_counters(0, 400).snapshot_and_reset(101.0)
    assert (second.started, second.ended) == (100.0, 101.0)
    assert sum(second.by_outcome) == 400
    assert second.by_outcome[Outcome.CHALLENGE] == 100
    assert second.by_route[:3] == (134, 133, 133)
    assert second.by_status == (0, 292, 0, 0, 8)
    assert sum(second.latency) == 300
    assert (second.new_connections, second.bytes_in, second.bytes_out) == (7, 1000, 50_000)
    assert len(second.sample) == 16 and second.sample_seen == 400
    top_paths = second.top["path"]
    assert top_paths.entries[0][:2] == ("/", 360) and top_paths.n == 400
    assert len(second.top["client_ip"].entries) == 8  # `reported` caps what is sent


def test_reset_starts_a_new_second_but_keeps_the_in_flight_gauge() -> None:
    counters = SecondCounters(0, 0.0)
    for _ in range(5):
        counters.origin_start()
    counters.origin_done(200, 0.01)
    first = counters.snapshot_and_reset(1.0)
    assert (first.inflight, first.inflight_peak) == (4, 5)
    counters.origin_done(0, 3.0)  # the client left: no status, no latency
    second = counters.snapshot_and_reset(2.0)
    assert (second.inflight, second.inflight_peak) == (3, 4)
    assert sum(second.by_status) == 0 and sum(second.latency) == 0
    assert second.started == 1.0
    assert sum(second.by_outcome) == 0 and second.sample_seen == 0
    assert second.clients == bytes(1 << 14)


def test_origin_statuses_outside_1xx_to_5xx_are_not_counted() -> None:
    counters = SecondCounters(0, 0.0)
    for status in (99, 600, 0):
        counters.origin_start()
        counters.origin_done(status, 0.1)
    second = counters.snapshot_and_reset(1.0)
    assert sum(second.by_status) == 0 and second.inflight == 0


def test_worker_second_survives_the_wire() -> None:
    second = busy_counters(3, 250).snapshot_and_reset(101.0)
    assert WorkerSecond.from_bytes(second.to_bytes()) == second
    with pytest.raises(ValueError):
        WorkerSecond.from_bytes(b"[1, 2]")
    with pytest.raises(KeyError):
        WorkerSecond.from_bytes(b"{}")


def test_merge_adds_up_the_workers() -> None:
    parts = [
        busy_counters(worker, 100 * (worker + 1), seed=worker).snapshot_and_reset(101.0)
        for worker in range(3)
    ]
    merged = merge(parts, top_size=8, sample_size=16, rng=random.Random(1))
    assert merged.workers == 3 and merged.at == 101.0 and merged.duration == 1.0
    assert merged.requests == 600 and merged.rps == 600.0
    assert merged.legit == 450 and merged.mitigated == 150
    assert merged.by_outcome == tuple(
        sum(column) for column in zip(*(p.by_outcome for p in parts), strict=True)
    )
    assert merged.origin_responses == 450
    assert merged.error_share == pytest.approx(sum(p.by_status[4] for p in parts) / 450)
    assert (merged.new_connections, merged.bytes_in) == (21, 3000)
    assert 495 <= merged.clients.estimate() <= 505  # 100 + 200 + 200 addresses, none shared
    assert merged.top["path"].entries[0][0] == "/"
    assert merged.top["path"].n == 600
    assert len(merged.sample) == 16 and merged.sample_seen == 600
    assert set(merged.sample) <= {item for part in parts for item in part.sample}


def test_merge_pads_route_classes_of_an_older_config() -> None:
    old = SecondCounters(0, 0.0, route_classes=2)
    new = SecondCounters(1, 0.0, route_classes=4)
    old.request(1, Outcome.ALLOW)
    new.request(3, Outcome.BLOCK)
    merged = merge([old.snapshot_and_reset(1.0), new.snapshot_and_reset(1.0)])
    assert merged.by_route == (0, 1, 0, 1)


def test_merge_leaves_out_the_clients_of_a_worker_with_another_precision() -> None:
    old = SecondCounters(0, 0.0, hll_precision=12)
    new = SecondCounters(1, 0.0, hll_precision=14)
    old.sketch("192.0.2.1", ("192.0.2.1", "192.0.2.0/24", "/", "ua"))
    new.sketch("192.0.2.2", ("192.0.2.2", "192.0.2.0/24", "/", "ua"))
    merged = merge([new.snapshot_and_reset(1.0), old.snapshot_and_reset(1.0)])
    assert merged.clients.precision == 14 and round(merged.clients.estimate()) == 1
    assert merged.top["client_ip"].n == 2


def test_merge_needs_a_second() -> None:
    with pytest.raises(ValueError):
        merge([])


def test_merged_sample_is_no_larger_than_a_full_worker_sample() -> None:
    full = SecondCounters(0, 0.0, sample_size=4, rng=random.Random(1))
    for i in range(50):
        full.sample.offer((str(i),))
    merged = merge([full.snapshot_and_reset(1.0)], sample_size=256, rng=random.Random(1))
    assert len(merged.sample) == 4 and merged.sample_seen == 50


def test_latency_histogram_quantiles() -> None:
    assert latency_bucket(0.0005) == 0
    assert latency_bucket(0.001) == 0
    assert latency_bucket(0.0011) == 1
    assert latency_bucket(1000.0) == len(LATENCY_BOUNDS)
    histogram = [0] * (len(LATENCY_BOUNDS) + 1)
    for latency in [0.010] * 90 + [0.400] * 10:
        histogram[latency_bucket(latency)] += 1
    p50, p95 = latency_quantile(histogram, 0.5), latency_quantile(histogram, 0.95)
    assert 0.010 / 1.42 <= p50 <= 0.010 * 1.42
    assert 0.400 / 1.42 <= p95 <= 0.400 * 1.42
    assert latency_quantile([0] * len(histogram), 0.95) == 0.0
    histogram[-1] = 1000
    assert latency_quantile(histogram, 0.95) == LATENCY_BOUNDS[-1]


def test_past_sketch_all_a_flood_is_sampled_yet_its_heavy_hitter_stands_out() -> None:
    counters = SecondCounters(0, 100.0, rng=random.Random(3))
    rng = random.Random(4)
    flood, others = 0, 0
    for _ in range(40 * SKETCH_ALL):
        ip = "203.0.113.9" if rng.random() < 0.6 else f"198.51.{rng.randrange(4)}.{rng.randrange(250)}"
        flood += ip == "203.0.113.9"
        others += ip != "203.0.113.9"
        counters.request(0, Outcome.LIMIT)
        weight = counters.sketch_weight()
        if weight:
            counters.sketch(ip, (ip, ip, "/", "curl/8"), weight)
        else:
            counters.count_client(ip)
    sketched = counters.top[0]
    assert sketched.n <= 40 * SKETCH_ALL and sketched.n > 40 * SKETCH_ALL - 20 * SKETCH_STRIDE
    assert len(sketched) < 40 * SKETCH_ALL / SKETCH_STRIDE, "most requests were not sketched one by one"
    second = counters.snapshot_and_reset(101.0)
    top = second.top["client_ip"].entries[0]
    assert top[0] == "203.0.113.9"
    assert abs(top[1] - flood) / flood < 0.05, (top, flood)
    clients = HyperLogLog(registers=second.clients).estimate()
    assert 900 <= clients <= 1100, "the distinct clients are counted for every request"
    assert counters.sketch_weight() == 1, "a new second sketches every request again"
