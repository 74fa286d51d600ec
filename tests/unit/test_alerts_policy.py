"""The alert policy: which events alert, flapping, and the per-destination limit with its digest. Time
is explicit everywhere (the policy takes `now`)."""

from __future__ import annotations

from alerts_sample import ALL_KINDS, mode_change, opened, recorded_incident, replay
from hypothesis import given, settings
from hypothesis import strategies as st

from shieldwall.alerts.policy import DIGEST_LISTED, Alert, AlertKind, AlertPolicy, Digest
from shieldwall.detector.events import Event, EventKind, Mode
from shieldwall.detector.modes import Ladder

E, U, N = Mode.ELEVATED, Mode.UNDER_ATTACK, Mode.NORMAL


def alert(at: float, kind: AlertKind = AlertKind.ESCALATED) -> Alert:
    return Alert(kind, 1_718_000_000.0 + at, "INC-1", E, U, "")


# --- which events alert --------------------------------------------------------------------------


def test_the_recorded_incident_alerts_open_escalation_pin_unpin_and_close() -> None:
    incident = recorded_incident()
    deliveries = replay(AlertPolicy(["hook"], max_per_window=100), incident)
    alerts = [d.notice for d in deliveries]
    assert all(isinstance(a, Alert) for a in alerts)
    assert [(a.kind, a.old, a.new) for a in alerts if isinstance(a, Alert)] == [
        (AlertKind.OPENED, N, E),
        (AlertKind.ESCALATED, E, U),
        (AlertKind.PINNED, U, U),
        (AlertKind.UNPINNED, U, U),
        (AlertKind.CLOSED, N, N),
    ]


def test_the_opened_alert_carries_the_reason_and_figures_of_the_mode_change_it_tells() -> None:
    incident = recorded_incident()
    first = replay(AlertPolicy(["hook"]), incident)[0].notice
    assert isinstance(first, Alert) and first.kind is AlertKind.OPENED
    assert first.reason.startswith("5005 requests/s is 100.2x the baseline 50")
    assert first.values["rps"] == 5005.0
    assert first.incident == incident.id


def test_the_closed_alert_summarises_the_incident_with_the_reports_figures() -> None:
    incident = recorded_incident()
    last = replay(AlertPolicy(["hook"]), incident)[-1].notice
    assert isinstance(last, Alert) and last.summary is not None
    summary = last.summary
    assert (summary.id, summary.opened, summary.closed) == (incident.id, incident.opened, incident.closed)
    assert summary.duration == 209.0
    assert (summary.peak_mode, summary.peak_rps) == (U, 5022.0)
    assert 0 < summary.mitigated < summary.requests
    assert summary.mitigated_share == summary.mitigated / summary.requests


def test_step_downs_alert_only_when_asked_for() -> None:
    incident = recorded_incident()
    every = replay(AlertPolicy(["hook"], kinds=ALL_KINDS, max_per_window=100), incident)
    assert [d.notice.kind for d in every].count(AlertKind.DEESCALATED) == 2  # type: ignore[union-attr]
    only_closed = replay(AlertPolicy(["hook"], kinds=[AlertKind.CLOSED]), incident)
    assert [d.notice.kind for d in only_closed] == [AlertKind.CLOSED]  # type: ignore[union-attr]


def test_a_pin_that_changes_the_mode_is_one_alert_not_two() -> None:
    ladder = Ladder()
    pin = ladder.pin(U, None, 10.0, 1010.0, "jane: debate tonight")
    assert [e.kind for e in pin] == [EventKind.PIN, EventKind.MODE]
    unpin = ladder.unpin(20.0, 1020.0)
    assert [e.kind for e in unpin] == [EventKind.UNPIN, EventKind.MODE]
    policy = AlertPolicy(["hook"], kinds=ALL_KINDS)
    assert [a.kind for a in policy.alerts(pin, [], 10.0)] == [AlertKind.PINNED]
    assert [a.kind for a in policy.alerts(unpin, [], 20.0)] == [AlertKind.UNPINNED]


def test_without_opened_alerts_the_opening_change_alerts_as_an_escalation() -> None:
    events = [opened(E, 5.0), mode_change(N, E, 5.0, reason="surge")]
    policy = AlertPolicy(["hook"], kinds=[AlertKind.ESCALATED])
    [only] = policy.alerts(events, [], 5.0)
    assert (only.kind, only.old, only.new, only.reason) == (AlertKind.ESCALATED, N, E, "surge")


def test_events_that_change_nothing_in_force_do_not_alert() -> None:
    events = [
        Event(EventKind.AUTO_MODE, 1.0, 1001.0, U, E, "calm for 30 s"),  # a pin holds the mode
        Event("signature", 1.0, 1001.0, reason="sig-1 proposed"),
        Event("note", 1.0, 1001.0, reason="called the host"),
    ]
    assert AlertPolicy(["hook"], kinds=ALL_KINDS).alerts(events, [], 1.0) == []


# --- flapping ------------------------------------------------------------------------------------


def test_a_flapping_ladder_alerts_each_change_once_per_repeat_after() -> None:
    policy = AlertPolicy(["hook"], kinds=ALL_KINDS, repeat_after=600.0)
    told = []
    for step in range(10):  # up and down every 40 s for 400 s
        at = 40.0 * step
        old, new = (E, U) if step % 2 == 0 else (U, E)
        told += [(a.kind, at) for a in policy.alerts([mode_change(old, new, at)], [], at)]
    assert told == [(AlertKind.ESCALATED, 0.0), (AlertKind.DEESCALATED, 40.0)]
    assert policy.flaps_suppressed == 8
    assert [a.kind for a in policy.alerts([mode_change(E, U, 600.0)], [], 600.0)] == [AlertKind.ESCALATED]


def test_the_same_change_in_another_incident_is_not_a_flap() -> None:
    policy = AlertPolicy(["hook"])
    assert policy.alerts([mode_change(E, U, 0.0, incident="INC-1")], [], 0.0)
    assert policy.alerts([mode_change(E, U, 60.0, incident="INC-2")], [], 60.0)
    assert policy.flaps_suppressed == 0


def test_repeat_after_zero_keeps_every_change() -> None:
    policy = AlertPolicy(["hook"], repeat_after=0.0)
    assert all(policy.alerts([mode_change(E, U, float(t))], [], float(t)) for t in range(5))


# --- the limit and the digest --------------------------------------------------------------------


def test_beyond_the_limit_alerts_are_held_and_go_as_one_digest_when_a_token_is_back() -> None:
    policy = AlertPolicy(["hook"], max_per_window=3, window=600.0)
    sent = policy.release([alert(float(i)) for i in range(10)], 0.0)
    assert [d.notice for d in sent] == [alert(0.0), alert(1.0), alert(2.0)]
    assert policy.held("hook") == 7
    assert policy.release([], 599.9) == []
    [digest] = policy.release([], 600.0)
    assert isinstance(digest.notice, Digest)
    assert digest.notice.total == 7 and digest.notice.not_listed == 0
    assert digest.notice.alerts == tuple(alert(float(i)) for i in range(3, 10))
    assert digest.notice.since == alert(3.0).wall
    assert policy.held("hook") == 0
    # The window slides: the other two tokens spent at 0.0 are back as well.
    assert len(policy.release([alert(700.0), alert(701.0)], 600.0)) == 2
    assert policy.release([alert(702.0)], 600.0) == []


def test_a_lone_held_alert_goes_as_itself() -> None:
    policy = AlertPolicy(["hook"], max_per_window=1)
    policy.release([alert(0.0)], 0.0)
    policy.release([alert(5.0, AlertKind.CLOSED)], 5.0)
    [late] = policy.release([], 600.0)
    assert late.notice == alert(5.0, AlertKind.CLOSED)


def test_a_digest_lists_the_latest_alerts_and_counts_the_rest() -> None:
    policy = AlertPolicy(["hook"], max_per_window=1)
    policy.release([alert(float(i)) for i in range(1 + DIGEST_LISTED + 15)], 0.0)
    [digest] = policy.release([], 600.0)
    assert isinstance(digest.notice, Digest)
    assert digest.notice.total == DIGEST_LISTED + 15 and digest.notice.not_listed == 15
    assert digest.notice.alerts[0] == alert(16.0)
    assert digest.notice.since == alert(1.0).wall  # the first held, even when it is no longer listed


def test_alerts_never_overtake_held_ones() -> None:
    policy = AlertPolicy(["hook"], max_per_window=1)
    policy.release([alert(0.0), alert(1.0)], 0.0)
    [out] = policy.release([alert(600.0, AlertKind.CLOSED)], 600.0)
    assert isinstance(out.notice, Digest)
    assert [a.kind for a in out.notice.alerts] == [AlertKind.ESCALATED, AlertKind.CLOSED]


def test_each_destination_has_its_own_limit() -> None:
    policy = AlertPolicy(["slack", "email"], max_per_window=2)
    sent = policy.release([alert(0.0), alert(1.0), alert(2.0)], 0.0)
    assert [d.destination for d in sent] == ["slack", "slack", "email", "email"]
    assert policy.held("slack") == policy.held("email") == 1


@settings(max_examples=200, deadline=None)
@given(
    limit=st.integers(1, 6),
    arrivals=st.lists(st.tuples(st.floats(0, 5000), st.integers(0, 8)), max_size=40),
)
def test_no_window_ever_sees_more_than_the_limit_and_no_alert_is_lost(
    limit: int, arrivals: list[tuple[float, int]]
) -> None:
    policy = AlertPolicy(["hook"], max_per_window=limit, window=600.0)
    sent_at: list[float] = []
    accounted = total = 0
    for now, count in sorted(arrivals):
        total += count
        for delivery in policy.release([alert(now)] * count, now):
            sent_at.append(now)
            notice = delivery.notice
            accounted += notice.total if isinstance(notice, Digest) else 1
    assert accounted + policy.held("hook") == total
    for index, start in enumerate(sent_at):
        assert sum(1 for t in sent_at[index:] if t < start + 600.0) <= limit
