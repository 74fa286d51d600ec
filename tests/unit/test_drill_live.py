"""The running drill's view: plain lines when stdout is not a terminal (events at once, status every few
seconds), a rich panel on a terminal, both showing the figures the drill computed."""

from __future__ import annotations

import io

from shieldwall.drill.live import PlainView, RichView, Tick, make_view, status_line


def tick(elapsed: float, mode: str | None = "under_attack") -> Tick:
    return Tick(
        setup="shieldwall", phase="during", elapsed=elapsed, phase_left=12.0, mode=mode, signatures=1,
        legit_rps=14.0, legit_success=0.995, legit_p95_ms=120.0, attack_rps=1000.0,
        origin_legit_rps=10.0, origin_attack_rps=0.0, donations=7,
    )  # fmt: skip


def test_a_status_line_says_what_matters():
    line = status_line(tick(25.0))
    assert "[ 25.0s shieldwall during   12s left] mode=under_attack" in line
    assert "legit 14/s ok 99.5 % p95 120 ms | attack 1000/s → origin 0/s | donations 7" in line
    assert "mode=" not in status_line(tick(25.0, mode=None))  # no shield, no mode


def test_the_plain_view_prints_events_at_once_and_status_every_few_seconds():
    out = io.StringIO()
    view = PlainView(out, every=2.0)
    view.event("the attack starts")
    for elapsed in (0.5, 1.0, 2.0, 2.5, 4.5):
        view.tick(tick(elapsed))
    lines = out.getvalue().splitlines()
    assert lines[0] == "the attack starts"
    assert [line[:7] for line in lines[1:]] == ["[  0.5s", "[  2.5s", "[  4.5s"]


def test_not_a_terminal_gets_plain_lines_and_a_terminal_the_panel():
    assert isinstance(make_view(io.StringIO()), PlainView)
    out = io.StringIO()
    view = make_view(out, fancy=True)
    assert isinstance(view, RichView)
    view.event("signature mined: requests from user agent 'Go-http-client/1.1'")
    view.tick(tick(25.0))
    view.close()
    shown = out.getvalue()
    assert "under_attack" in shown and "Go-http-client" in shown and "donations made" in shown
