"""What a finished drill prints and writes: the scorecard of every setup side by side, what the shield
did (its modes, the signatures it mined, the incident and its reports), and the JSON of `--json`."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shieldwall.drill.reports import IncidentFiles, write_reports
from shieldwall.drill.run import DrillPlan, SetupRun, wall_clock_label
from shieldwall.drill.scorecard import render


def slowdown_line(run: SetupRun) -> str:
    """The route-by-route p95 slowdown against peacetime, phase by phase."""
    shown = ", ".join(f"{phase} {'—' if v is None else f'{v:.1f}x'}" for phase, v in run.slowdown.items())
    return f"  visitors' p95 latency route by route, against peacetime: {shown}"


def shield_lines(run: SetupRun) -> list[str]:
    """What the shield did, in a few lines (nothing for a setup without a shield)."""
    lines = [f"{run.setup}:", slowdown_line(run)]
    if run.modes is None:
        return lines
    modes = " → ".join(f"{mode} at {at:.1f} s" for at, mode in run.modes)
    lines.append(f"  modes: {modes}")
    if run.time_to_under_attack_s is not None:
        lines.append(f"  under_attack {run.time_to_under_attack_s:.1f} s after the attack started")
    if run.time_to_normal_s is not None:
        lines.append(f"  back to normal mode {run.time_to_normal_s:.1f} s after it ended")
    for description in run.signatures.values():
        lines.append(f"  signature mined: {description}")
    challenges = run.solver
    lines.append(
        f"  visitors solved {challenges['solved']} challenges, waited out {challenges['waited']} "
        f"without JavaScript, failed {challenges['failed']}"
    )
    return lines


def incident_lines(run: SetupRun) -> tuple[list[str], list[IncidentFiles]]:
    """The incidents of a shield's run, writing their HTML and STIX reports into its workdir."""
    if run.state_dir is None or run.workdir is None:
        return [], []
    try:
        written = write_reports(run.state_dir, run.workdir / "reports")
    except ImportError as exc:  # the report renderers are not installed: the incidents are still stored
        return [f"  incident: {incident}  (no report renderer: {exc})" for incident in run.incidents], []
    lines = []
    for files in written:
        lines.append(f"  incident: {files.incident}")
        lines += [f"  report:   {report}" for report in files.reports]
        if files.problem:
            lines.append(f"  (no report: {files.problem})")
    return lines, written


def print_results(results: Sequence[SetupRun], out: Any) -> list[IncidentFiles]:
    """The scorecard, what each shield did and its incidents; returns the reports written."""
    print(file=out)
    print(render([run.card for run in results]), file=out, end="")
    written: list[IncidentFiles] = []
    for run in results:
        lines = shield_lines(run)
        incident, files = incident_lines(run)
        written += files
        for line in [*lines, *incident, *(f"  problem: {p}" for p in run.problems)]:
            print(line, file=out)
        if run.workdir is not None:
            print(f"  ({run.setup}: logs and configs in {run.workdir})", file=out)
    return written


def drill_json(
    plan: DrillPlan, results: Sequence[SetupRun], reports: Sequence[IncidentFiles]
) -> dict[str, Any]:
    return {
        "format": "shieldwall-drill/1",
        "generated": wall_clock_label(),
        "plan": {
            "scenario": plan.scenario,
            "rate": plan.attack.rate,
            "sources": plan.attack.sources,
            "attack_seconds": plan.attack.seconds,
            "before_seconds": plan.before,
            "after_seconds": plan.after,
            "visitors": plan.visitors,
            "nojs_share": plan.nojs_share,
            "replayed_requests": len(plan.replay),
            "speedup": plan.speedup,
            "site": {
                "workers": plan.site.workers,
                "service_ms": plan.site.service_ms,
                "backlog": plan.site.backlog,
                "capacity_pages_per_s": plan.site.capacity_rps,
            },
            "seed": plan.seed,
        },
        "setups": [run.to_json() for run in results],
        "reports": [str(path) for files in reports for path in files.reports],
    }


def write_json(
    path: Path, plan: DrillPlan, results: Sequence[SetupRun], reports: Sequence[IncidentFiles]
) -> None:
    path.write_text(json.dumps(drill_json(plan, results, reports), indent=1) + "\n", encoding="utf-8")
