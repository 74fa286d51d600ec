"""Sketches: heavy hitters within their error bound (alone and merged), HyperLogLog within a few percent
at 100k and 1M, fair reservoir samples, and memory that does not grow with the number of clients."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shieldwall.detector.sketches import HeavyHitters, HyperLogLog, Reservoir, Summary, merge_samples

MILLION = 1_000_000


def addresses(count: int, start: int = 0) -> list[str]:
    """Distinct IPv4 addresses, consecutive (the hardest input for a weak hash)."""
    return [
        f"{(i >> 24) + 10}.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}" for i in range(start, start + count)
    ]


def zipf_stream(length: int, universe: int, s: float, seed: int) -> list[str]:
    rng = random.Random(seed)
    weights = [1 / (rank**s) for rank in range(1, universe + 1)]
    return [f"key{rank}" for rank in rng.choices(range(universe), weights=weights, k=length)]


def assert_valid(summary: Summary, truth: Counter[str]) -> None:
    """The Summary contract: count is an upper bound, count - error a lower bound, error <= floor,
    and nothing unlisted occurred more than floor times."""
    listed = set()
    for key, count, error in summary.entries:
        listed.add(key)
        assert count - error <= truth[key] <= count, (key, count, error, truth[key])
        assert 0 <= error <= summary.floor
    for key, frequency in truth.items():
        if key not in listed:
            assert frequency <= summary.floor, (key, frequency, summary.floor)
    assert summary.n == sum(truth.values())


def test_heavy_hitters_find_the_true_top_keys_of_a_zipf_stream() -> None:
    stream = zipf_stream(200_000, universe=50_000, s=1.1, seed=1)
    truth = Counter(stream)
    hitters = HeavyHitters(256)
    for key in stream:
        hitters.add(key)
    summary = hitters.summary()
    assert_valid(summary, truth)
    assert summary.floor <= len(stream) / 257  # the n / (k + 1) bound
    assert len(hitters) <= 2 * 256
    top = [key for key, _, _ in summary.entries[:20]]
    assert top == [key for key, _ in truth.most_common(20)]
    for key, count, _ in summary.entries[:20]:
        assert count - truth[key] <= summary.floor


def test_merged_worker_summaries_keep_the_bound_for_the_whole_stream() -> None:
    stream = zipf_stream(200_000, universe=50_000, s=1.1, seed=2)
    rng = random.Random(3)
    workers = [HeavyHitters(256) for _ in range(4)]
    for key in stream:
        workers[rng.randrange(4)].add(key)
    merged = Summary.merge([worker.summary(64) for worker in workers], capacity=64)
    truth = Counter(stream)
    assert_valid(merged, truth)
    # Each part truncated to t=64 entries has floor <= its n / 65, so the errors sum to <= N / 65.
    assert max(error for _, _, error in merged.entries) <= len(stream) / 65
    assert [key for key, _, _ in merged.entries[:10]] == [key for key, _ in truth.most_common(10)]


@settings(max_examples=200, deadline=None)
@given(
    streams=st.lists(
        st.lists(st.integers(min_value=0, max_value=30).map(str), max_size=300), min_size=1, max_size=4
    ),
    capacity=st.integers(min_value=1, max_value=8),
    limit=st.integers(min_value=1, max_value=10),
)
def test_summaries_and_their_merges_never_break_the_contract(
    streams: list[list[str]], capacity: int, limit: int
) -> None:
    parts = []
    for stream in streams:
        hitters = HeavyHitters(capacity)
        for key in stream:
            hitters.add(key)
        whole = hitters.summary()
        assert_valid(whole, Counter(stream))
        assert whole.floor * (capacity + 1) <= len(stream)
        parts.append(hitters.summary(limit))
        assert_valid(parts[-1], Counter(stream))
    merged = Summary.merge(parts, capacity=limit)
    assert_valid(merged, Counter(key for stream in streams for key in stream))
    assert max((error for _, _, error in merged.entries), default=0) <= sum(part.floor for part in parts)


def test_summary_crosses_the_wire_unchanged() -> None:
    hitters = HeavyHitters(4)
    for key in "abracadabra-alakazam":
        hitters.add(key)
    summary = hitters.summary(3)
    assert Summary.from_wire(summary.to_wire()) == summary
    with pytest.raises(ValueError):
        Summary.from_wire([1, 2])


def test_top_share_is_the_guaranteed_share() -> None:
    assert Summary((("a", 60, 10), ("b", 55, 0)), 10, 100).top_share() == 0.55
    assert Summary((), 0, 0).top_share() == 0.0


@pytest.mark.parametrize(
    ("precision", "count", "tolerance"),
    [(12, 100_000, 0.03), (14, 100_000, 0.02), (14, MILLION, 0.03)],
)
def test_hyperloglog_estimates_within_a_few_percent(precision: int, count: int, tolerance: float) -> None:
    sketch = HyperLogLog(precision)
    for address in addresses(count):
        sketch.add(address)
    assert abs(sketch.estimate() / count - 1) <= tolerance
    assert len(sketch.registers) == 1 << precision


def test_hyperloglog_is_exact_enough_for_small_counts_and_ignores_repeats() -> None:
    sketch = HyperLogLog(14)
    assert sketch.estimate() == 0.0
    for address in addresses(100) * 5:
        sketch.add(address)
    assert abs(sketch.estimate() - 100) <= 2


def test_hyperloglog_merge_is_the_sketch_of_the_union() -> None:
    a, b, union = HyperLogLog(12), HyperLogLog(12), HyperLogLog(12)
    for address in addresses(30_000):
        a.add(address)
        union.add(address)
    for address in addresses(30_000, start=20_000):
        b.add(address)
        union.add(address)
    a.merge(b)
    assert a.registers == union.registers
    assert abs(a.estimate() / 50_000 - 1) <= 0.03
    with pytest.raises(ValueError, match="precision"):
        a.merge(HyperLogLog(14))


@given(st.binary(min_size=1 << 4, max_size=1 << 4), st.binary(min_size=1 << 4, max_size=1 << 4))
def test_hyperloglog_merge_is_the_register_wise_maximum(left: bytes, right: bytes) -> None:
    a = HyperLogLog(4, bytes(byte % 61 for byte in left))
    b = HyperLogLog(4, bytes(byte % 61 for byte in right))
    a.merge(b)
    assert list(a.registers) == [max(x % 61, y % 61) for x, y in zip(left, right, strict=True)]


def test_hyperloglog_refuses_registers_that_do_not_fit() -> None:
    with pytest.raises(ValueError):
        HyperLogLog(12, bytes(100))
    with pytest.raises(ValueError):
        HyperLogLog(12, bytes([60]) * 4096)  # q + 1 = 53 is the highest rank at p=12
    with pytest.raises(ValueError):
        HyperLogLog(3)


def test_reservoir_keeps_every_item_with_the_same_probability() -> None:
    inclusions = Counter[int]()
    trials = 4000
    for trial in range(trials):
        sample: Reservoir[int] = Reservoir(10, random.Random(trial))
        for item in range(100):
            sample.offer(item)
        assert len(sample.items) == 10
        assert len(set(sample.items)) == 10
        assert sample.seen == 100
        inclusions.update(sample.items)
    # Each item is kept with p = 0.1: 400 expected, binomial sd ~19; +-25 % is > 5 sd.
    assert all(300 <= inclusions[item] <= 500 for item in range(100)), inclusions
    early, late = sum(inclusions[i] for i in range(50)), sum(inclusions[i] for i in range(50, 100))
    assert abs(early - late) < 0.05 * trials * 10


def test_reservoir_asks_before_an_item_is_built() -> None:
    sample: Reservoir[int] = Reservoir(5, random.Random(1))
    wanted = []
    for i in range(10_000):
        if sample.wants():
            sample.put(i)
            wanted.append(i)
    assert wanted[:5] == [0, 1, 2, 3, 4]
    assert len(wanted) < 100  # ~k * ln(n / k) after the first k, far fewer than n
    assert set(sample.items) <= set(wanted)


def test_merged_samples_are_drawn_in_proportion_to_each_stream() -> None:
    rng = random.Random(5)
    from_busy = 0
    for _ in range(500):
        busy: Reservoir[str] = Reservoir(20, rng)
        quiet: Reservoir[str] = Reservoir(20, rng)
        for i in range(900):
            busy.offer(f"b{i}")
        for i in range(100):
            quiet.offer(f"q{i}")
        seen, merged = merge_samples([(busy.seen, busy.items), (quiet.seen, quiet.items)], 20, rng)
        assert seen == 1000
        assert len(merged) == 20
        from_busy += sum(1 for item in merged if item.startswith("b"))
    assert 0.87 <= from_busy / (500 * 20) <= 0.93


def test_merged_sample_of_short_streams_keeps_everything() -> None:
    seen, merged = merge_samples([(2, ["a", "b"]), (1, ["c"])], 10, random.Random(1))
    assert (seen, sorted(merged)) == (3, ["a", "b", "c"])
    with pytest.raises(ValueError):
        merge_samples([(50, ["a"])], 10, random.Random(1))


def test_memory_stays_flat_under_a_million_distinct_clients() -> None:
    hitters = HeavyHitters(1024)
    sketch = HyperLogLog(14)
    sample: Reservoir[str] = Reservoir(256, random.Random(1))
    largest = 0
    for address in addresses(MILLION, start=7):
        hitters.add(address)
        sketch.add(address)
        sample.offer(address)
        largest = max(largest, len(hitters))
    assert largest <= 2 * 1024
    assert len(hitters.summary(64).entries) == 64
    assert len(sketch.registers) == 1 << 14
    assert len(sample.items) == 256
    assert sample.seen == MILLION
    assert hitters.n == MILLION
