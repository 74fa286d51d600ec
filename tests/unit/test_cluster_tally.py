"""Cluster-wide limits without Redis: Gcra.owe_until, the per-bucket tally, the reconciler, and a simulated
cluster (the Lua script's arithmetic on a dict, a FakeClock) showing that a flood split over several
participants is limited as a whole within the bound docs/policy.md states, that each participant gets a
share of it, and that traffic keeping to the rate as a whole is not refused."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest

from shieldwall.config.load import ConfigError, parse_config
from shieldwall.core.clock import FakeClock
from shieldwall.limiter.cluster_tally import LINGER, ClusterTally, Plan, Reconciler
from shieldwall.limiter.gcra import Gcra
from shieldwall.policy.compile import compile_policy
from shieldwall.policy.decision import RequestView

# --- Gcra.owe_until --------------------------------------------------------------------------------------


def admitted_now(gcra: Gcra, now: float, tries: int = 100) -> int:
    return sum(gcra.check("k", now).allowed for _ in range(tries))


def test_owing_until_a_later_time_takes_from_the_bucket() -> None:
    gcra = Gcra(rate=10, burst=5)
    gcra.owe_until("k", 100.3, 100.0)  # the cluster's bucket is 3 requests ahead
    assert admitted_now(gcra, 100.0) == 2


def test_a_debt_beyond_the_burst_makes_the_bucket_wait_it_off() -> None:
    gcra = Gcra(rate=10, burst=5)
    gcra.owe_until("k", 102.0, 100.0)
    assert admitted_now(gcra, 101.5) == 0
    assert admitted_now(gcra, 101.61, tries=1) == 1  # 102.0 - tolerance (0.4)


def test_owing_never_moves_the_bucket_back_nor_remembers_a_past_time() -> None:
    gcra = Gcra(rate=10, burst=10)
    for _ in range(8):
        assert gcra.check("k", 100.0).allowed
    gcra.owe_until("k", 100.5, 100.0)  # it owes until 100.8 already
    assert admitted_now(gcra, 100.0) == 2
    gcra.owe_until("other", 99.0, 100.0)
    assert len(gcra) == 1


def test_owing_keeps_the_table_bounded() -> None:
    gcra = Gcra(rate=1, burst=1, max_keys=8)
    for index in range(100):
        gcra.owe_until(f"k{index}", 105.0, 100.0)
    assert len(gcra) <= 8


# --- ClusterTally and Reconciler -------------------------------------------------------------------------


def test_the_tally_counts_per_bucket_and_take_starts_it_again() -> None:
    tally = ClusterTally(Gcra(10, 5))
    for key in ("a", "a", "b"):
        tally.add(key)
    assert tally.take(0.0) == {"a": 2, "b": 1}
    assert tally.take(0.2) == {}, "nothing settled yet: nothing lingers"


def test_the_tally_is_bounded_and_counts_what_it_could_not_hold() -> None:
    tally = ClusterTally(Gcra(10, 5), max_keys=3)
    for index in range(5):
        tally.add(f"k{index}")
    tally.add("k0")
    assert tally.take(0.0) == {"k0": 2, "k1": 1, "k2": 1}
    assert tally.untallied == 2


def test_settling_raises_the_bucket_to_the_shared_one_and_active_buckets_linger() -> None:
    gcra = Gcra(rate=10, burst=10)
    tally = ClusterTally(gcra)
    assert gcra.check("k", 100.0).allowed
    tally.add("k")
    assert tally.take(100.0) == {"k": 1}
    tally.settle("k", 1, 0.5, 100.0)  # the cluster's bucket: 5 requests ahead (1 of them ours)
    assert admitted_now(gcra, 100.0) == 5
    assert tally.take(100.0 + LINGER) == {"k": 0}, "synced with nothing to add, so the debt arrives"
    tally.settle("k", 0, 0.0, 100.0 + LINGER)  # settling a 0 count does not keep it active
    assert tally.take(100.0 + LINGER + 0.2) == {}


def test_a_sync_carries_the_busiest_buckets_and_keeps_the_counts_of_the_rest() -> None:
    tallies = {"a": ClusterTally(Gcra(10, 5)), "b": ClusterTally(Gcra(10, 5))}
    reconciler = Reconciler(tallies, 0.0, max_keys=2)
    for key, count in (("x", 5), ("y", 1)):
        for _ in range(count):
            tallies["a"].add(key)
    for _ in range(3):
        tallies["b"].add("x")
    plan = reconciler.plan(0.25)
    assert [(item.rule, item.key, item.count) for item in plan.items] == [("a", "x", 5), ("b", "x", 3)]
    assert plan.age == 0.25, "the requests came since the reconciler started"
    assert reconciler.deferred == 1
    assert tallies["a"].take(0.3) == {"y": 1}
    assert reconciler.plan(0.45).age == pytest.approx(0.2)


def test_a_cluster_scoped_rule_tallies_only_what_it_admits() -> None:
    settings = parse_config(
        {
            "cluster": {"redis": "redis://127.0.0.1:6379/0"},
            "rules": [
                {"name": "shared", "action": "limit", "limit": {"rate": 1.0, "burst": 2, "scope": "cluster"}},
                {"name": "local", "action": "limit", "limit": {"rate": 1.0, "burst": 2}},
            ],
        }
    )
    policy = compile_policy(settings.rules)
    shared, local = (rule.limiter for rule in policy.rules)
    assert shared is not None and local is not None and local.tally is None and shared.tally is not None
    view = RequestView("192.0.2.1", "192.0.2.0/24", b"GET", b"example.org", b"/", b"", ())
    assert [policy.decide(view, 0.0).action.value for _ in range(3)] == ["allow", "allow", "limit"]
    assert shared.tally.take(0.0) == {"192.0.2.1": 2}


def test_scope_cluster_without_redis_is_a_config_error() -> None:
    rule = {"name": "r", "action": "limit", "limit": {"rate": 1.0, "burst": 2, "scope": "cluster"}}
    with pytest.raises(ConfigError) as caught:
        parse_config({"rules": [rule]})
    assert caught.value.problems == [
        "cluster: rule 'r' has scope = \"cluster\" but [cluster] has no redis; set redis to the URL of the "
        'Redis the nodes share, or give the rule scope = "node"'
    ]


# --- a simulated cluster ---------------------------------------------------------------------------------


@dataclass
class ScriptModel:
    """cluster/limits.py's script on a dict, with the simulation's clock for Redis's TIME."""

    clock: FakeClock
    tat: dict[str, float] = field(default_factory=dict)

    def advance(self, plan: Plan) -> list[float]:
        now = self.clock.monotonic()
        owed = []
        for item in plan.items:
            tat = self.tat.get(item.key, 0.0)
            if item.count:
                tat = self.tat[item.key] = max(tat, now - plan.age) + item.count * item.interval
            owed.append(max(0.0, tat - now))
        return owed


@dataclass
class Participant:
    gcra: Gcra
    tally: ClusterTally
    reconciler: Reconciler
    admitted: int = 0
    refused: int = 0


def simulate(
    *,
    participants: int,
    rate: float,
    burst: int,
    sync_interval: float,
    offered: float,
    duration: float = 10.0,
    seed: int = 0,
) -> list[Participant]:
    """Each participant gets `offered` requests/s in one bucket, evenly spaced, and syncs every
    `sync_interval` at a phase of its own; Redis answers at once."""
    rng = random.Random(seed)
    clock = FakeClock(start=0.0)
    redis = ScriptModel(clock)
    cluster = []
    for _ in range(participants):
        gcra = Gcra(rate, burst)
        tally = ClusterTally(gcra)
        cluster.append(Participant(gcra, tally, Reconciler({"r": tally}, 0.0)))
    events: list[tuple[float, int, int]] = []
    for index in range(participants):
        first = rng.uniform(0, 1 / offered)
        events += [(first + k / offered, 0, index) for k in range(int(duration * offered))]
        phase = rng.uniform(0, sync_interval)
        events += [(phase + k * sync_interval, 1, index) for k in range(int(duration / sync_interval) + 1)]
    for at, kind, index in sorted(events):
        clock.advance(at - clock.monotonic())
        part = cluster[index]
        if kind == 0:
            if part.gcra.check("", clock.monotonic()).allowed:
                part.tally.add("")
                part.admitted += 1
            else:
                part.refused += 1
        else:
            plan = part.reconciler.plan(clock.monotonic())
            part.reconciler.settle(plan, redis.advance(plan), clock.monotonic())
    return cluster


@pytest.mark.parametrize(
    ("participants", "rate", "burst", "sync_interval", "offered"),
    [
        (3, 40.0, 10, 0.2, 150.0),
        (3, 40.0, 10, 0.1, 1000.0),
        (5, 40.0, 10, 0.2, 150.0),
        (8, 200.0, 100, 0.25, 400.0),
        (2, 5.0, 1, 1.0, 50.0),
    ],
)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_flood_split_over_the_cluster_is_limited_as_a_whole_and_shared(
    participants: int, rate: float, burst: int, sync_interval: float, offered: float, seed: int
) -> None:
    duration = 10.0
    cluster = simulate(
        participants=participants,
        rate=rate,
        burst=burst,
        sync_interval=sync_interval,
        offered=offered,
        duration=duration,
        seed=seed,
    )
    admitted = sum(part.admitted for part in cluster)
    bound = rate * duration + participants * (burst + rate * sync_interval)  # docs/policy.md
    assert rate * duration <= admitted <= bound
    assert admitted < 0.6 * participants * (rate * duration + burst), "what they admit counting apart"
    fair = admitted / participants
    assert min(part.admitted for part in cluster) >= 0.5 * fair, [part.admitted for part in cluster]


@pytest.mark.parametrize(("rate", "burst"), [(40.0, 1), (40.0, 2), (40.0, 10), (10.0, 1), (10.0, 3)])
def test_traffic_that_keeps_to_the_rate_as_a_whole_is_not_refused(rate: float, burst: int) -> None:
    # 95% of the rate in all, split over three participants. Counting each batch from the moment of its
    # sync instead of from the previous one refused up to a quarter of these at burst 1 or 2.
    for seed in range(3):
        cluster = simulate(
            participants=3, rate=rate, burst=burst, sync_interval=0.2, offered=rate * 0.95 / 3, seed=seed
        )
        assert sum(part.refused for part in cluster) == 0
