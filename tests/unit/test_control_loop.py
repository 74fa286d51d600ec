"""The control process's tick, sans-io: workers' seconds (made by the real SecondCounters, through their
wire format) go in; the mode, the incident and attack signatures come out, and the state to write only
when it changed. A pin from the operator holds the mode."""

from __future__ import annotations

import json
import logging
import random
import time
from pathlib import Path

from shieldwall.config.detector_schema import Detector
from shieldwall.control import incident_facts
from shieldwall.control.loop import ControlLoop
from shieldwall.control.process import _prune
from shieldwall.control.state import ControlState, Pin
from shieldwall.detector.config import DetectorConfig
from shieldwall.detector.counters import Answered, Outcome, SecondCounters
from shieldwall.detector.events import Mode
from shieldwall.detector.features import FEATURE_NAMES, Features
from shieldwall.net.ipdata import IpData
from shieldwall.report.formats import render
from shieldwall.report.model import build_report
from shieldwall.report.store import load
from shieldwall.state import incident_store

WALL0 = 1_800_000_000.0
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
BOT = "python-requests/2.31.0"
CONFIG = DetectorConfig(warmup=20, min_rps=5.0, hold=5.0)


def features(ip: str, path: str, user_agent: str) -> tuple[str, ...]:
    prefix = ip.rsplit(".", 1)[0] + ".0/24"
    vector = Features("GET", "www.example.org", path, "", user_agent, "a1b2c3d4", "en-gb", prefix)
    return tuple(getattr(vector, name) for name in FEATURE_NAMES)


def worker_second(at: float, rng: random.Random, *, legit: int, flood: int) -> bytes:
    counters = SecondCounters(0, at, rng=rng)
    for n in range(legit):
        ip = f"198.51.{rng.randrange(40)}.{rng.randrange(1, 250)}"
        path = rng.choice(("/", "/news", "/donate", "/about"))
        counters.request(0, Outcome.ALLOW)
        counters.origin_start()
        counters.origin_done(200, 0.02)
        counters.sketch(ip, (ip, ip, path, BROWSER))
        if counters.sample.wants():
            counters.sample.put(features(ip, path, BROWSER))
        del n
    for n in range(flood):
        ip = f"203.0.{n % 200}.{n % 250 + 1}"
        counters.request(0, Outcome.ALLOW)
        counters.sketch(ip, (ip, ip, "/search", BOT))
        if counters.sample.wants():
            counters.sample.put(features(ip, "/search", BOT))
    return counters.snapshot_and_reset(at + 1.0).to_bytes()


class Simulation:
    def __init__(self) -> None:
        self.loop = ControlLoop(CONFIG, rng=random.Random(1))
        self.rng = random.Random(2)
        self.now = 100.0
        self.states: list[ControlState] = []

    def run(self, seconds: int, *, legit: int = 30, flood: int = 0) -> None:
        for _ in range(seconds):
            self.loop.receive(worker_second(self.now, self.rng, legit=legit, flood=flood))
            self.now += 1.0
            tick = self.loop.tick(self.now, WALL0 + self.now)
            if tick.state is not None:
                self.states.append(tick.state)


def test_a_flood_takes_the_mode_up_within_seconds_and_yields_a_signature_on_the_bot() -> None:
    sim = Simulation()
    sim.run(40)
    assert sim.loop.state.mode is Mode.NORMAL and not sim.states, "calm traffic writes nothing"
    sim.run(5, flood=1500)
    assert sim.loop.state.mode is Mode.UNDER_ATTACK
    assert sim.loop.state.incident is not None and sim.loop.state.incident.startswith("INC-")
    sim.run(10, flood=1500)
    signatures = sim.loop.state.signatures
    assert signatures, "the miner ran during the attack"
    assert any(("user_agent", BOT) in sig.conditions for sig in signatures)
    assert all(sig.matches(Features(*features("203.0.1.2", "/search", BOT))) for sig in signatures)
    assert not any(sig.matches(Features(*features("198.51.1.2", "/news", BROWSER))) for sig in signatures)


def test_after_the_flood_it_steps_down_closes_the_incident_and_drops_the_signatures() -> None:
    sim = Simulation()
    sim.run(40)
    sim.run(15, flood=1500)
    incident = sim.loop.state.incident
    closed = []
    for _ in range(60):
        sim.loop.receive(worker_second(sim.now, sim.rng, legit=30, flood=0))
        sim.now += 1.0
        closed += sim.loop.tick(sim.now, WALL0 + sim.now).closed
    assert sim.loop.state.mode is Mode.NORMAL
    assert sim.loop.state.signatures == ()
    assert [inc.id for inc in closed] == [incident]


def test_a_pin_holds_the_mode_until_it_is_lifted() -> None:
    sim = Simulation()
    sim.run(30)
    sim.loop.pin(Pin(Mode.UNDER_ATTACK, until=None, by="alice"), sim.now, WALL0 + sim.now)
    sim.run(3)
    assert sim.loop.state.mode is Mode.UNDER_ATTACK and sim.loop.state.pinned
    sim.loop.pin(Pin(None), sim.now, WALL0 + sim.now)
    sim.run(1)
    assert sim.loop.state.mode is Mode.NORMAL and not sim.loop.state.pinned


def test_the_state_survives_its_file_format() -> None:
    sim = Simulation()
    sim.run(40)
    sim.run(15, flood=1500)
    state = sim.loop.state
    again = ControlState.from_json(state.to_json())
    assert again == state


def test_a_damaged_message_is_dropped_and_the_loop_goes_on() -> None:
    sim = Simulation()
    sim.loop.receive(b"not json")
    sim.run(2)
    assert sim.loop.state.mode is Mode.NORMAL


def test_a_second_without_any_worker_message_is_skipped() -> None:
    sim = Simulation()
    tick = sim.loop.tick(sim.now + 1, WALL0 + sim.now + 1)
    assert tick.state is None and not tick.events


def test_the_status_snapshot_has_the_rates_the_top_and_the_history() -> None:
    sim = Simulation()
    sim.run(40)
    sim.run(10, flood=1500)
    snapshot = sim.loop.status.snapshot
    assert snapshot["mode"] == "under_attack" and snapshot["incident"] == sim.loop.state.incident
    assert snapshot["now"]["rps"] == 1530
    assert snapshot["top"]["path"][0] == ["/search", 1500]
    assert len(snapshot["history"]) == 50 and snapshot["history"][-1][4] == "under_attack"
    json.dumps(snapshot)  # it goes out as JSON as it is


def test_a_reference_id_can_be_looked_up() -> None:
    sim = Simulation()
    counters = SecondCounters(0, sim.now)
    counters.request(0, Outcome.BLOCK)
    counters.answer(Answered("SW-0123456789AB", WALL0, "203.0.113.9", "GET", "/wp-login.php", 403, "rule wp"))
    sim.loop.receive(counters.snapshot_and_reset(sim.now + 1).to_bytes())
    sim.now += 1
    sim.loop.tick(sim.now, WALL0 + sim.now)
    found = sim.loop.lookup("SW-0123456789AB")
    assert found is not None and found.reason == "rule wp" and found.status == 403
    assert sim.loop.lookup("SW-000000000000") is None


def test_a_closed_incident_is_saved_with_the_facts_a_report_needs(tmp_path) -> None:
    sim = Simulation()
    sim.run(40)
    sim.run(15, flood=1500)
    sim.loop.pin(Pin(Mode.UNDER_ATTACK, until=None, by="alice", reason="debate"), sim.now, WALL0 + sim.now)
    sim.run(1, flood=1500)
    sim.loop.pin(Pin(None, by="alice"), sim.now, WALL0 + sim.now)
    closed = []
    for _ in range(60):
        sim.loop.receive(worker_second(sim.now, sim.rng, legit=30, flood=0))
        sim.now += 1.0
        closed += sim.loop.tick(sim.now, WALL0 + sim.now).closed
    (incident,) = closed
    sim.loop.facts.save(incident, tmp_path, WALL0 + sim.now)
    saved, facts = load(tmp_path, incident.id)
    assert facts is not None and saved.id == incident.id
    assert facts.signatures and any(("user_agent", BOT) in r.signature.conditions for r in facts.signatures)
    assert facts.top.user_agents[0].value == BOT and facts.top.user_agents[0].share > 0.9
    assert facts.top.fingerprints and facts.top.fingerprints[0].value == "a1b2c3d4"
    assert facts.impact.success_rate == 1.0 and facts.impact.success_rate_before == 1.0
    assert [(a.what, a.by) for a in facts.actions] == [
        ("pinned the mode to under_attack", "alice"),
        ("lifted the mode pin", "alice"),
    ]
    html = render(build_report(saved, facts, generated=WALL0 + sim.now), "html")
    assert BOT in (html if isinstance(html, str) else html.decode())
    incident_store.shared(tmp_path).close()


def test_a_new_signature_is_written_into_the_incident_timeline() -> None:
    sim = Simulation()
    sim.run(40)
    sim.run(15, flood=1500)
    incident = sim.loop.detector.incident
    assert incident is not None
    noted = [event for event in incident.timeline if event.kind == "signature"]
    assert noted and BOT in noted[0].reason and noted[0].incident == incident.id


def test_the_control_process_prunes_to_the_configured_retention_and_logs_a_failure(tmp_path, caplog) -> None:
    for n in range(3):
        incident_store.shared(tmp_path).save(
            incident_store.Record(f"INC-{n}", time.time() - n, None, "elevated", 1.0, "{}"), time.time()
        )
    with caplog.at_level(logging.INFO, logger="shieldwall.control"):
        _prune(tmp_path, Detector(incidents_kept=1))
    assert [x.id for x in incident_store.shared(tmp_path).listings()] == ["INC-0"]
    assert "deleted 2 old incidents" in caplog.text
    incident_store.shared(tmp_path).close()
    incident_store.database_path(tmp_path).write_bytes(b"\0garbage" * 1000)
    _prune(tmp_path, Detector())  # logged, not raised: the control process keeps running
    assert "cannot prune old incidents" in caplog.text and "file is not a database" in caplog.text
    incident_store.shared(tmp_path).close()


def test_a_signature_lives_while_it_matches_and_a_ban_wave_is_in_the_timeline() -> None:
    sim = Simulation()
    sim.run(40)
    sim.run(15, flood=1500)
    (signature, *_) = sim.loop.state.signatures
    expires = signature.expires
    sim.loop.mine_signatures = False  # only the match counts may keep it alive now
    for n in (1, 2):
        counters = SecondCounters(0, sim.now)
        for _ in range(1530):
            counters.request(0, Outcome.ALLOW)
        stats = {f"signature.{signature.id}": 500 * n, "bans.made": 0 if n == 1 else 25}
        sim.loop.receive(counters.snapshot_and_reset(sim.now + 1, stats).to_bytes())
        sim.now += 1
        sim.loop.tick(sim.now, WALL0 + sim.now)
    kept = next(sig for sig in sim.loop.state.signatures if sig.id == signature.id)
    assert kept.expires > expires, "it still matched, so it lives on"
    incident = sim.loop.detector.incident
    assert incident is not None
    waves = [event for event in incident.timeline if event.kind == "ban_wave"]
    assert len(waves) == 1 and "25 clients banned" in waves[0].reason


def test_with_asn_data_the_facts_name_the_networks_behind_the_top_prefixes(tmp_path) -> None:
    table = tmp_path / "ip2asn.tsv"
    table.write_text(
        "198.51.0.0\t198.51.255.255\t64501\tZZ\tEXAMPLE-ISP\n"
        "203.0.0.0\t203.0.255.255\t64500\tZZ\tEXAMPLE-HOSTING\n"
    )
    sim = Simulation()
    sim.loop.facts.ipdata = IpData.load(table)
    sim.run(40)
    sim.run(15, flood=1500)
    incident = sim.loop.detector.incident
    assert incident is not None
    facts = sim.loop.facts.facts(incident, tmp_path, WALL0 + sim.now)
    top, *rest = facts.top.asns
    assert (top.value, top.label) == ("AS64500", "EXAMPLE-HOSTING"), "the flood's network comes first"
    assert all(entry.requests < top.requests for entry in rest)


def test_the_status_names_the_route_classes() -> None:
    loop = ControlLoop(CONFIG, rng=random.Random(1), route_labels=("/search",))
    counters = SecondCounters(0, 100.0, route_classes=2)
    counters.request(1, Outcome.ALLOW)
    counters.request(0, Outcome.ALLOW)
    counters.request(1, Outcome.ALLOW)
    loop.receive(counters.snapshot_and_reset(101.0).to_bytes())
    loop.tick(101.0, WALL0 + 101)
    assert loop.status.snapshot["now"]["by_route"] == {"other": 1.0, "/search": 2.0}


def test_the_fingerprints_an_incident_counts_are_bounded(monkeypatch) -> None:
    """A flood that randomises its header order must not grow the report's book without end."""
    monkeypatch.setattr(incident_facts, "FINGERPRINTS_KEPT", 3)
    sim = Simulation()
    sim.run(40)
    sim.run(5, flood=1500)
    incident = sim.loop.detector.incident
    assert incident is not None
    rng = random.Random(5)
    for n in range(10):
        counters = SecondCounters(0, sim.now, rng=rng)
        for i in range(20):
            counters.request(0, Outcome.ALLOW)
            vector = Features("GET", "h", "/", "", BOT, f"order-{n}-{i}", "en", "203.0.113.0/24")
            if counters.sample.wants():
                counters.sample.put(tuple(getattr(vector, name) for name in FEATURE_NAMES))
        sim.loop.receive(counters.snapshot_and_reset(sim.now + 1.0).to_bytes())
        sim.now += 1.0
        sim.loop.tick(sim.now, WALL0 + sim.now)
    kept = sim.loop.facts.facts(incident, Path("/nonexistent"), WALL0 + sim.now).top.fingerprints
    assert 0 < len(kept) <= 3 and "a1b2c3d4" in {entry.value for entry in kept}
