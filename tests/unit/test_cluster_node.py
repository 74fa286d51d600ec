"""One node's side of the cluster, without Redis: which bans it sends and what it writes for its
workers (control/cluster_bans.py), and which state and incidents it applies by role
(control/cluster_view.py)."""

from __future__ import annotations

import random
import time
from pathlib import Path

from test_control_loop import CONFIG, WALL0, worker_second

from shieldwall.cluster.bans import BanBatch
from shieldwall.control.cluster_bans import BATCH, NodeBans
from shieldwall.control.cluster_view import STATE_FRESH, ClusterView
from shieldwall.control.loop import ControlLoop, Tick
from shieldwall.control.state import ControlState, Pin
from shieldwall.detector.events import Mode
from shieldwall.limiter.bans import Ban, Lift
from shieldwall.net.networks import NetworkSet
from shieldwall.state import ban_store, manual_bans


def ban(target: str, until: float | None, since: float, source: str = "auto") -> Ban:
    return Ban(target, until, "test", "manual" if source == "manual" else "auto", 0, since)


def test_a_workers_ban_is_sent_once_and_again_only_when_longer(tmp_path: Path) -> None:
    node = NodeBans(tmp_path)
    now = time.time()
    node.note(ban("192.0.2.1", now + 60, now))
    node.note(ban("192.0.2.1", now + 30, now))  # weaker: the cluster has better
    batch = node.take()
    assert batch is not None and [b.until for b in batch.bans] == [now + 60]
    assert node.take() is None
    node.note(ban("192.0.2.1", now + 600, now))
    again = node.take()
    assert again is not None and [b.until for b in again.bans] == [now + 600]
    node.give_back(again)  # Redis refused it: it goes out with the next batch
    assert node.take() == again


def test_an_operators_ban_and_its_removal_go_to_the_cluster(tmp_path: Path) -> None:
    node = NodeBans(tmp_path)
    now = time.time()
    manual_bans.add(tmp_path, ban("198.51.100.7", now + 600, now, "manual"), NetworkSet(()))
    node.poll(now)
    sent = node.take()
    assert sent is not None and [b.target for b in sent.bans] == ["198.51.100.7"]
    node.adopt(BanBatch("b", sent.bans))  # the cluster echoes it back: it is in cluster.json too
    assert node.write(1.0)
    manual_bans.remove(tmp_path, "198.51.100.7", now + 1)
    node.poll(now + 1)
    lifted = node.take()
    assert lifted is not None and [lift.target for lift in lifted.lifts] == ["198.51.100.7"]
    node.write(2.0)
    active = ban_store.load_all(tmp_path, now + 2)
    assert "198.51.100.7" not in {b.target for b in active.bans}, "the node's own copy went at once"


def test_the_cluster_file_holds_the_strongest_ban_and_respects_lifts(tmp_path: Path) -> None:
    node = NodeBans(tmp_path)
    now = time.time()
    node.adopt(BanBatch("b", [ban("192.0.2.5", now + 60, now - 10)]))
    node.adopt(BanBatch("c", [ban("192.0.2.5", now + 600, now - 5), ban("192.0.2.6", now + 60, now)]))
    node.adopt(BanBatch("c", lifts=[Lift("192.0.2.6", now + 1, now + 60)]))
    node.adopt(BanBatch("c", [ban("192.0.2.6", now + 900, now + 2)]))  # a new offence after the lift
    assert node.write(1.0)
    held = {b.target: b.until for b in ban_store.load_all(tmp_path, now).bans}
    assert held == {"192.0.2.5": now + 600, "192.0.2.6": now + 900}
    assert not node.write(2.0), "nothing changed: no rewrite"
    node.poll(now)
    assert node.take() is None, "what the cluster sent is not sent back"


def test_after_a_reconnect_what_the_cluster_lacks_is_sent_again(tmp_path: Path) -> None:
    node = NodeBans(tmp_path)
    now = time.time()
    ban_store.save(tmp_path, ban_store.worker_writer(0), [ban("192.0.2.8", now + 300, now)])
    node.poll(now)
    assert node.take() is not None
    manual_bans.add(tmp_path, ban("198.51.100.1", now + 600, now, "manual"), NetworkSet(()))
    ban_store.save(tmp_path, ban_store.worker_writer(1), [ban("198.51.100.2", now + 300, now)])
    manual_bans.remove(tmp_path, "198.51.100.2", now)  # a lift, kept in manual.json
    node.poll(now)
    assert node.take() is not None
    node.adopt(BanBatch(), replace=True)  # Redis came back empty
    node.poll(now, force=True)
    again = node.take()
    assert again is not None and {b.target for b in again.bans} == {"192.0.2.8", "198.51.100.1"}
    assert [lift.target for lift in again.lifts] == ["198.51.100.2"], "the operator's lift too"


def feed(loop: ControlLoop, at: float, rng: random.Random, flood: int) -> None:
    loop.receive(worker_second(at, rng, legit=30, flood=flood))


class Node:
    """A node's two detectors fed the same seconds (one node alone in its cluster, for simplicity)."""

    def __init__(self, tmp_path: Path, name: str = "a") -> None:
        self.local = ControlLoop(CONFIG, rng=random.Random(1))
        self.view = ClusterView(ControlLoop(CONFIG, rng=random.Random(1)), name, tmp_path)
        self.rng = random.Random(2)
        self.now = 100.0

    def second(self, flood: int = 0, cluster_flood: int | None = None) -> Tick:
        feed(self.local, self.now, self.rng, flood)
        feed(self.view.loop, self.now, self.rng, flood if cluster_flood is None else cluster_flood)
        self.now += 1.0
        local = self.local.tick(self.now, WALL0 + self.now)
        return self.view.tick(local, self.local.state, self.local.facts, self.now, WALL0 + self.now)


def test_the_leader_applies_and_keeps_the_clusters_incident_and_the_degraded_node_its_own(
    tmp_path: Path,
) -> None:
    node = Node(tmp_path)
    node.view.connected, node.view.leader = True, "a"
    for _ in range(30):
        node.second()
    ticks = [node.second(flood=0, cluster_flood=1500) for _ in range(5)]
    assert node.view.loop.state.mode is Mode.UNDER_ATTACK and node.local.state.mode is Mode.NORMAL
    applied = [tick.state for tick in ticks if tick.state is not None]
    assert applied and applied[-1].mode is Mode.UNDER_ATTACK, "the leader applies the cluster's mode"
    assert ticks[-1].open is not None and ticks[-1].open.id == node.view.loop.state.incident
    node.view.after_save(ticks[-1])
    assert node.view.outbox_state is not None and node.view.outbox_state["node"] == "a"
    node.view.connected, node.view.leader = False, None  # Redis lost: the node decides alone
    alone = node.second(flood=0, cluster_flood=1500)
    assert alone.state is not None and alone.state.mode is Mode.NORMAL
    assert alone.open is None, "the node's own detector saw no attack"


def test_a_follower_applies_the_leaders_state_while_it_is_fresh(tmp_path: Path) -> None:
    node = Node(tmp_path, "b")
    node.view.connected, node.view.leader = True, "a"
    node.second()
    leader_state = ControlState(mode=Mode.ELEVATED, incident="INC-x", updated=WALL0)
    node.view.adopt_leader_state({"node": "a", "state": leader_state.to_json().decode()}, node.now)
    tick = node.second()
    assert tick.state is not None and tick.state.mode is Mode.ELEVATED and node.view.source == "leader"
    assert tick.open is None and not tick.closed, "followers keep no incident of their own"
    node.now += STATE_FRESH + 1
    stale = node.second()
    assert stale.state is not None and stale.state.mode is Mode.NORMAL and node.view.source == "cluster"


def test_a_pin_from_any_node_pins_the_cluster_detector(tmp_path: Path) -> None:
    node = Node(tmp_path)
    node.view.connected, node.view.leader = True, "a"
    node.second()
    node.view.pin(Pin(Mode.UNDER_ATTACK, by="bob"), node.now, WALL0 + node.now)
    tick = node.second()
    assert tick.state is not None and tick.state.mode is Mode.UNDER_ATTACK and tick.state.pinned


def test_new_bans_go_into_small_segments_until_a_lift_folds_them_into_the_whole_file(
    tmp_path: Path,
) -> None:
    node = NodeBans(tmp_path)
    now = time.time()
    node.adopt(BanBatch("b", [ban("192.0.2.1", now + 600, now)]), replace=True)
    node.write(1.0)
    files = lambda: sorted(path.name for path in (tmp_path / "bans").glob("cluster*.json"))  # noqa: E731
    assert files() == ["cluster.json"]
    node.adopt(BanBatch("b", [ban("192.0.2.2", now + 600, now)]))
    node.write(2.0)
    node.adopt(BanBatch("c", [ban("192.0.2.3", now + 600, now)]))
    node.write(3.0)
    assert files() == ["cluster-1.json", "cluster-2.json", "cluster.json"]
    segment = ban_store.load(tmp_path, "cluster-2", now)
    assert [b.target for b in segment.bans] == ["192.0.2.3"], "a segment holds only what is new"
    held = {b.target for b in ban_store.load_all(tmp_path, now).bans}
    assert held == {"192.0.2.1", "192.0.2.2", "192.0.2.3"}
    assert not ban_store.load_all(tmp_path, now, skip=ban_store.CLUSTER).bans, "skip covers the segments"
    node.adopt(BanBatch("c", lifts=[Lift("192.0.2.2", now + 1, now + 600)]))
    node.write(4.0)
    assert files() == ["cluster.json"]
    assert {b.target for b in ban_store.load_all(tmp_path, now).bans} == {"192.0.2.1", "192.0.2.3"}


def test_a_ban_wave_goes_out_in_batches(tmp_path: Path) -> None:
    node = NodeBans(tmp_path)
    now = time.time()
    for i in range(BATCH + 10):
        node.note(ban(f"10.0.{i // 250}.{i % 250}", now + 60, now))
    first, second = node.take(), node.take()
    assert first is not None and second is not None and node.take() is None
    assert (len(first.bans), len(second.bans)) == (BATCH, 10)


def test_a_follower_starts_its_own_facts_afresh_when_an_incident_it_does_not_keep_closes(
    tmp_path: Path,
) -> None:
    node = Node(tmp_path, "b")
    node.view.connected, node.view.leader = True, "a"
    for _ in range(30):
        node.second()
    for _ in range(10):
        node.second(flood=1500)  # node b's own detector opens an incident of its own
    incident = node.local.detector.incident
    assert incident is not None
    assert node.local.facts.facts(incident, tmp_path, WALL0 + node.now).top.user_agents, "facts gathered"
    closed = False
    for _ in range(90):
        tick = node.second()
        assert tick.open is None and not tick.closed, "a follower keeps no incident of its own"
        closed = closed or node.local.detector.incident is None
        if closed:
            break
    assert closed, "node b's own detector closed its incident"
    fresh = node.local.facts.facts(incident, tmp_path, WALL0 + node.now)
    assert fresh.top.fingerprints == () and fresh.top.user_agents == (), "the book started afresh"
