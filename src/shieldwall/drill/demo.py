"""`shieldwall demo` (`make demo`): the whole story in about 90 seconds, on this machine only.

The campaign site and shieldwall start on 127.0.0.1; visitors browse, log in and donate; after 30 s
of peace a distributed flood of GETs from 2,000 addresses arrives at 20 times what the site can
serve; the shield detects it, escalates to under_attack (every visitor without a clearance solves a
challenge once), mines a signature of the flood, and keeps donors and volunteers first in the queue
for the site; the flood stops after 25 s and the shield steps back to normal. The view shows rates,
the mode and the events as they happen; the end shows the scorecard and the incident's report files.

Why 30 s of peace and not a minute: the demo's shield needs 10 s to learn its baseline (`warmup` in
contrib/drill/shieldwall.toml), 30 s gives a steady peacetime figure to compare with, and the
whole story then fits in about 90 s. `--quick` shortens every phase (about 35 s in all) for tests.

Exit status 0 when the story went as told (the flood detected and mitigated, supporters donating
through it, the shield back to normal); otherwise 1 with what went wrong, so `make demo` doubles as
an end-to-end smoke test.
"""

from __future__ import annotations

import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, TextIO

from shieldwall.drill.live import make_view
from shieldwall.drill.run import DrillError, DrillPlan, SetupRun, run_drill
from shieldwall.drill.scenarios import AttackParams
from shieldwall.drill.summary import print_results

MIN_SUCCESS_UNDER_ATTACK: Final = 0.9


@dataclass(frozen=True)
class Story:
    before: float
    attack: float
    after: float
    hold: float
    rate: float
    visitors: int


FULL: Final = Story(before=30.0, attack=25.0, after=30.0, hold=10.0, rate=1_000.0, visitors=40)
QUICK: Final = Story(before=8.0, attack=8.0, after=12.0, hold=3.0, rate=600.0, visitors=24)


def plan_for(story: Story) -> DrillPlan:
    return replace(
        DrillPlan(),
        attack=AttackParams(rate=story.rate, sources=2_000, seconds=story.attack),
        before=story.before,
        after=story.after,
        hold=story.hold,
        visitors=story.visitors,
    )


def verdict(run: SetupRun) -> list[str]:
    """What did not go as the story says (empty: it all did)."""
    wrong = []
    card = run.card
    during = next(f for f in card.phases if f.phase == "during")
    if card.time_to_detect_s is None:
        wrong.append("the shield never left normal mode during the flood")
    elif run.time_to_under_attack_s is None:
        wrong.append("the shield never went to under_attack")
    if during.legit_success is None or during.legit_success < MIN_SUCCESS_UNDER_ATTACK:
        wrong.append(
            f"visitors were served less than {MIN_SUCCESS_UNDER_ATTACK:.0%} of the time during the flood"
        )
    donated = run.habits.get("during", {}).get("supporter", {}).get("ok", 0)
    if not donated:
        wrong.append("no supporter got a page through during the flood")
    if run.time_to_normal_s is None:
        wrong.append("the shield was not back to normal mode by the end")
    if card.peacetime_false_positives:
        wrong.append(f"{card.peacetime_false_positives} visitors were challenged or blocked in peacetime")
    wrong += run.problems
    return wrong


def _wait_for_interrupt(out: TextIO) -> None:
    stop = threading.Event()
    previous = {
        signum: signal.signal(signum, lambda *_: stop.set()) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        while not stop.wait(1.0):
            pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print("stopping.", file=out)


def main(
    *, quick: bool = False, keep_running: bool = False, workdir: Path | None = None, out: TextIO | None = None
) -> int:
    out = sys.stdout if out is None else out
    story = QUICK if quick else FULL
    plan = plan_for(story)
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix=f"shieldwall-demo-{time.strftime('%Y%m%d-%H%M%S')}-"))
    print(
        f"shieldwall demo: a campaign site behind shieldwall on 127.0.0.1, {story.visitors} visitors, "
        f"{story.before:g} s of peace, then a flood at {story.rate:g} requests/s from 2,000 addresses "
        f"for {story.attack:g} s ({story.rate / plan.site.capacity_rps:g}x what the site can serve), then "
        f"{story.after:g} s to watch the shield step back. Files: {workdir}",
        file=out,
        flush=True,
    )
    view = make_view(out)
    written: list[object] = []

    def show(run: SetupRun, site_url: str, shield_url: str) -> None:
        view.close()
        written.extend(print_results([run], out))
        if keep_running:
            print(
                f"\nthe shield is still running at {shield_url} (the site at {site_url}); its dashboard: "
                f"shieldwall admin url --config {workdir / 'shieldwall.toml'}. Ctrl-C stops both.",
                file=out,
                flush=True,
            )
            _wait_for_interrupt(out)

    try:
        (run,) = run_drill(plan, workdir, view, linger=show)
    except DrillError as exc:
        view.close()
        print(f"demo failed: {exc}", file=sys.stderr)
        return 1
    wrong = verdict(run)
    if wrong:
        print("\ndemo failed: the story did not go as it should:", file=sys.stderr)
        for line in wrong:
            print(f"  - {line}", file=sys.stderr)
        return 1
    print(
        "\nThe flood was detected and mitigated, supporters kept donating, and the shield stepped back.",
        file=out,
    )
    return 0
