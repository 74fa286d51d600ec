"""Scorecard maths: percentiles, per-phase figures from marks and outcomes, time to mitigate and to
recover, JSON, and the side-by-side table."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shieldwall.drill.scorecard import (
    Mark,
    OriginCounters,
    Scorecard,
    percentile,
    phase_figures,
    render,
    route_p95s,
    slowdown_p95,
    time_to_mitigate,
    time_to_recover,
)
from shieldwall.drill.visitors import Outcome


def origin(elapsed: float, busy: float, legit: int = 0, attack: int = 0, rejected: int = 0) -> OriginCounters:
    return OriginCounters(
        elapsed_s=elapsed,
        busy_s=busy,
        workers=4,
        received={"legit": legit, "attack": attack, "unmarked": 0},
        served={"legit": legit, "attack": attack - rejected, "unmarked": 0},
        rejected={"legit": 0, "attack": rejected, "unmarked": 0},
        connections_refused=0,
    )


def outcome(at: float, latency: float, status: int = 200, challenged: bool = False) -> Outcome:
    return Outcome(at, 0, "reader", "GET", "/", status, latency, challenged)


def test_percentiles_are_nearest_rank():
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile(values, 100) == 100.0
    assert percentile([7.0], 95) == 7.0
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([], 50) is None
    with pytest.raises(ValueError, match="within"):
        percentile([1.0], 0)


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=200), st.floats(0.1, 100))
def test_a_percentile_is_one_of_the_values_with_enough_below_it(values, q):
    p = percentile(values, q)
    assert p in values
    assert sum(v <= p for v in values) >= q / 100 * len(values) - 1e-9
    assert sum(v < p for v in values) < q / 100 * len(values) + 1e-9


def test_a_phase_counts_its_own_outcomes_and_the_difference_of_its_marks():
    start = Mark(100.0, 1_000, origin(50.0, 20.0, legit=10, attack=500, rejected=100))
    end = Mark(110.0, 21_000, origin(60.0, 56.0, legit=30, attack=700, rejected=150))
    outcomes = [
        outcome(99.9, 5.0),  # before the phase
        *(outcome(100.0 + i / 10, 0.010 + i / 1000) for i in range(18)),
        outcome(105.0, 0.5, status=403),
        outcome(106.0, 2.0, status=0),
        outcome(107.0, 0.8, challenged=True),
        outcome(110.0, 9.0),  # the next phase's
    ]
    figures = phase_figures("during", start, end, outcomes)
    assert figures.phase == "during" and figures.seconds == 10.0
    assert (figures.legit_requests, figures.legit_ok) == (21, 19)
    assert figures.legit_success == pytest.approx(19 / 21)
    assert figures.legit_p50_ms == pytest.approx(19.0)  # 10th of the 19 successful latencies: 0.019 s
    assert figures.legit_p95_ms == pytest.approx(800.0)  # the 19th: the challenged one
    assert (figures.legit_challenged, figures.legit_blocked) == (1, 1)
    assert (figures.attack_sent, figures.attack_at_origin) == (20_000, 200)
    assert figures.leakage == pytest.approx(0.01)
    assert figures.origin_utilisation == pytest.approx(36.0 / (4 * 10.0))
    assert figures.origin_rejected == 50


def test_a_phase_without_traffic_or_origin_has_no_figures_rather_than_zeros():
    figures = phase_figures("before", Mark(0.0, 0, None), Mark(10.0, 0, None), [])
    assert figures.legit_success is None and figures.legit_p95_ms is None
    assert figures.leakage is None and figures.attack_at_origin is None and figures.origin_utilisation is None
    reset = phase_figures("after", Mark(0.0, 0, origin(50.0, 1.0)), Mark(10.0, 5, origin(2.0, 0.5)), [])
    assert reset.origin_utilisation is None  # the site's counters were reset in between


def test_time_to_mitigate_is_when_leakage_fell_below_five_percent_for_good():
    def marks(leaks: list[int], per_second: int = 1000) -> list[Mark]:
        result, at_origin = [Mark(0.0, 0, origin(0.0, 0.0))], 0
        for second, leaked in enumerate(leaks, 1):
            at_origin += leaked
            result.append(
                Mark(float(second), second * per_second, origin(float(second), 0.0, attack=at_origin))
            )
        return result

    assert time_to_mitigate(marks([900, 400, 60, 10, 0, 0]), 0.0, 6.0) == 3.0
    assert time_to_mitigate(marks([10, 0, 0]), 0.0, 3.0) == 0.0
    assert time_to_mitigate(marks([900, 10, 80, 10]), 0.0, 4.0) == 3.0  # a relapse resets the clock
    assert time_to_mitigate(marks([900, 10, 10, 900]), 0.0, 4.0) is None  # leaking at the end
    assert time_to_mitigate(marks([900, 10, 10]), 1.0, 3.0) == 0.0  # only the attack window counts
    assert time_to_mitigate(marks([0, 0], per_second=0), 0.0, 2.0) is None  # nothing sent: no verdict


def test_time_to_recover_is_when_visitors_were_served_as_in_peacetime_again():
    slow = [outcome(100.0 + s + 0.5, 1.0) for s in range(3)]  # 3 s of 1 s latencies
    failing = [outcome(103.5, 0.05, status=0)]
    fine = [outcome(100.0 + s + 0.5, 0.05) for s in range(4, 10)]
    got = time_to_recover(slow + failing + fine, attack_end=100.0, run_end=110.0, peacetime_p95=0.04)
    assert got == 4.0
    assert (
        time_to_recover(fine, 100.0, 110.0, peacetime_p95=0.04) == 0.0
    )  # windows without traffic don't count
    assert time_to_recover(slow, 100.0, 103.0, peacetime_p95=0.04) is None
    assert time_to_recover([], 100.0, 110.0, peacetime_p95=0.04) == 0.0


def scorecard(setup: str, leak: int, challenged_before: int = 0) -> Scorecard:
    before = phase_figures(
        "before",
        Mark(0.0, 0, origin(0.0, 0.0)),
        Mark(10.0, 0, origin(10.0, 4.0, legit=100)),
        [outcome(1.0, 0.02, challenged=challenged_before > 0)],
    )
    during = phase_figures(
        "during",
        Mark(10.0, 0, origin(10.0, 4.0, legit=100)),
        Mark(20.0, 10_000, origin(20.0, 44.0, legit=200, attack=leak)),
        [outcome(11.0, 0.03), outcome(12.0, 0.0, status=0)],
    )
    return Scorecard(setup, "distributed GET flood", (before, during), time_to_mitigate_s=2.5)


def test_a_scorecard_is_json_with_its_peacetime_false_positives():
    card = scorecard("shieldwall", leak=50, challenged_before=1)
    data = json.loads(json.dumps(card.to_json()))
    assert data["setup"] == "shieldwall" and data["peacetime_false_positives"] == 1
    assert data["phases"][1]["leakage"] == pytest.approx(0.005)
    assert data["time_to_detect_s"] is None and data["time_to_mitigate_s"] == 2.5
    assert Scorecard("x", "y", ()).peacetime_false_positives is None


def test_the_table_puts_setups_side_by_side():
    text = render([scorecard("no shield", leak=10_000), scorecard("shieldwall", leak=50)])
    lines = text.splitlines()
    assert lines[0] == "scenario: distributed GET flood"
    assert lines[1].split() == ["no", "shield", "shieldwall"]
    leakage = [line for line in lines if "attack leakage" in line]
    assert len(leakage) == 2
    assert leakage[1].split()[-4:] == ["(10000)", "0.5", "%", "(50)"]
    assert any(line.startswith("during") and "50.0 % of 2" in line for line in lines)
    assert any(line.split()[:3] == ["time", "to", "mitigate"] and line.endswith("2.5 s") for line in lines)
    assert any(
        line.startswith("whole   time to detect") and line.split()[-2:] == ["—", "—"] for line in lines
    )
    assert render([]) == ""


def test_recovery_judged_route_by_route_is_not_fooled_by_a_slow_route():
    def search(at: float, latency: float) -> Outcome:
        return Outcome(at, 0, "reader", "GET", "/search?q=x", 200, latency)

    peace = [outcome(1.0 + i / 10, 0.08) for i in range(20)] + [search(3.0 + i / 10, 0.8) for i in range(5)]
    routes = route_p95s(peace, 0.0, 10.0)
    assert routes == {"GET /": 0.08, "GET /search": 0.8}
    assert route_p95s(peace, 0.0, 10.0, min_samples=6) == {"GET /": 0.08}
    cached = [outcome(1.0 + i / 10, 0.001) for i in range(20)]
    assert route_p95s(cached, 0.0, 10.0) == {"GET /": 0.05}  # a cache hit's millisecond counts as 50 ms
    after = [outcome(100.5 + s, 0.08) for s in range(6)] + [search(102.5, 0.8)]
    assert time_to_recover(after, 100.0, 106.0, peacetime_p95=0.08) == 3.0  # the search's second looks slow
    assert time_to_recover(after, 100.0, 106.0, peacetime_p95=0.08, by_route=routes) == 0.0
    slower = [*after, outcome(104.5, 0.4)]  # a page at 5x its peacetime latency
    assert time_to_recover(slower, 100.0, 106.0, peacetime_p95=0.08, by_route=routes) == 5.0
    challenged = [*after, Outcome(104.5, 0, "reader", "GET", "/", 200, 3.0, challenged=True)]
    assert time_to_recover(challenged, 100.0, 106.0, peacetime_p95=0.08, by_route=routes) == 0.0


def test_the_slowdown_compares_each_request_with_its_own_routes_peacetime():
    routes = {"GET /": 0.05, "GET /search": 0.8}
    during = [outcome(10.0 + i / 100, 0.1) for i in range(19)] + [
        Outcome(10.5, 0, "reader", "GET", "/search?q=a", 200, 0.8),
        Outcome(10.6, 0, "reader", "GET", "/unknown", 200, 9.0),  # no peacetime figure: left out
        outcome(10.7, 5.0, challenged=True),  # a challenge is paid once: left out
        outcome(10.8, 5.0, status=503),  # a failure counts in the success rate, not here
    ]
    assert slowdown_p95(during, 10.0, 11.0, routes) == pytest.approx(2.0)
    assert slowdown_p95(during, 20.0, 21.0, routes) is None
