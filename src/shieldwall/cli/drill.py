"""`shieldwall drill`: rehearse an attack on this machine and score how visitors fared.

Everything is checked before anything starts (`plan_from_options`, a pure function the tests call):
every figure within its bound, every address on loopback, the replay log readable. Exit codes: 0 the
drill ran (whatever its scores); 1 it could not run (a server did not start, the attack process
failed); 2 a bad command line."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path
from typing import Final

import click

from shieldwall.cli.options import CONTEXT
from shieldwall.drill.campaign_site import SiteSettings
from shieldwall.drill.loopback import NotLoopbackError, require_loopback
from shieldwall.drill.replay import MAX_SPEEDUP, LogEntry, read_log_file
from shieldwall.drill.run import BASELINES, SHIELDWALL, DrillPlan
from shieldwall.drill.scenarios import SCENARIOS, AttackParams

EXIT_FAILED: Final = 1
PROBLEMS_SHOWN: Final = 10
MAX_SITE_WORKERS: Final = 256


def _loopback_url(option: str, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        require_loopback(value)
    except NotLoopbackError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None
    if not value.startswith("http://"):
        raise click.BadParameter(f"{value!r}: write it as http://127.0.0.1:PORT", param_hint=option)
    return value.rstrip("/")


def _setups(compare: str) -> tuple[str, ...]:
    names = [name.strip() for name in compare.split(",") if name.strip()]
    unknown = sorted(set(names) - set(BASELINES))
    if unknown:
        raise click.BadParameter(
            f"{', '.join(unknown)}: compare with {' and/or '.join(BASELINES)}", param_hint="--compare"
        )
    return (SHIELDWALL, *dict.fromkeys(names))


def plan_from_options(
    *,
    scenario: str = "distributed-flood",
    seconds: float = 30.0,
    rate: float = 1_000.0,
    sources: int = 2_000,
    before: float = 20.0,
    after: float = 30.0,
    visitors: int = 40,
    nojs_share: float = 0.1,
    site_workers: int = 4,
    site_service_ms: float = 80.0,
    compare: str = "",
    attach: str | None = None,
    attach_site: str | None = None,
    state_dir: Path | None = None,
    shield_config: Path | None = None,
    replay: Path | None = None,
    speedup: float = 1.0,
    hold: float = 10.0,
    seed: int = 1,
) -> DrillPlan:
    """The drill the options ask for; click.BadParameter / UsageError (exit 2) for anything wrong."""
    attach = _loopback_url("--attach", attach)
    attach_site = _loopback_url("--attach-site", attach_site)
    if (attach_site is not None or state_dir is not None) and attach is None:
        raise click.UsageError(
            "--attach-site and --state-dir describe an --attach'ed shield; add --attach URL"
        )
    if not 1 <= site_workers <= MAX_SITE_WORKERS:
        raise click.BadParameter(f"must be within 1..{MAX_SITE_WORKERS}", param_hint="--site-workers")
    if not 1.0 <= site_service_ms <= 10_000:
        raise click.BadParameter("must be within 1..10000 ms", param_hint="--site-service-ms")
    if not 0 < speedup <= MAX_SPEEDUP:
        raise click.BadParameter(f"must be within (0, {MAX_SPEEDUP:g}]", param_hint="--speedup")
    if shield_config is not None and not shield_config.is_file():
        raise click.BadParameter(f"{shield_config}: no such file", param_hint="--shield-config")
    entries: tuple[LogEntry, ...] = ()
    if replay is not None:
        try:
            parsed = read_log_file(replay)
        except OSError as exc:
            raise click.BadParameter(f"{replay}: {exc.strerror or exc}", param_hint="--replay") from None
        for problem in parsed.problems[:PROBLEMS_SHOWN]:
            click.echo(f"shieldwall drill: {replay}: {problem} (skipped)", err=True)
        if parsed.skipped > PROBLEMS_SHOWN:
            click.echo(
                f"shieldwall drill: {replay}: {parsed.skipped - PROBLEMS_SHOWN} more lines skipped", err=True
            )
        if not parsed.entries:
            raise click.BadParameter(f"{replay}: no GET or HEAD request to replay", param_hint="--replay")
        entries = tuple(parsed.entries)
    plan = DrillPlan(
        scenario=scenario,
        attack=AttackParams(rate=rate, sources=sources, seconds=seconds, seed=seed),
        before=before,
        after=after,
        site=SiteSettings(workers=site_workers, service_ms=site_service_ms),
        visitors=visitors,
        nojs_share=nojs_share,
        replay=entries,
        speedup=speedup,
        setups=_setups(compare),
        attach=attach,
        attach_site=attach_site,
        attach_state_dir=state_dir,
        shield_config=shield_config,
        hold=hold,
        seed=seed,
    )
    try:
        plan.validate()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    return plan


@click.command(context_settings=CONTEXT, short_help="Rehearse an attack on loopback and score the shield.")
@click.option(
    "--scenario",
    type=click.Choice(list(SCENARIOS)),
    default="distributed-flood",
    show_default=True,
    help="The attack (see docs/efficacy.md for what --rate and --sources mean for each).",
)
@click.option(
    "--seconds", type=float, default=30.0, show_default=True, help="Length of the attack (max 600)."
)
@click.option(
    "--rate",
    type=float,
    default=1000.0,
    show_default=True,
    help="Attack requests/s in all (max 5000); connections held for slow-headers/slow-body.",
)
@click.option(
    "--sources",
    type=int,
    default=2000,
    show_default=True,
    help="Attacking addresses in 127.128.0.0/9 (max 30000); visitors for flash-crowd.",
)
@click.option("--before", type=float, default=20.0, show_default=True, help="Seconds of peace before it.")
@click.option("--after", type=float, default=30.0, show_default=True, help="Seconds watched after it.")
@click.option("--visitors", type=int, default=40, show_default=True, help="Legitimate visitors (max 2000).")
@click.option(
    "--nojs-share",
    type=float,
    default=0.1,
    show_default=True,
    help="Share of visitors without JavaScript (they take the challenge's wait).",
)
@click.option("--site-workers", type=int, default=4, show_default=True, help="The campaign site's workers.")
@click.option(
    "--site-service-ms",
    type=float,
    default=80.0,
    show_default=True,
    help="Its service time of a page (a search costs 10 pages).",
)
@click.option(
    "--compare",
    default="",
    metavar="none,nginx",
    help="Also run the same drill with the site exposed (none) and/or behind nginx's limits.",
)
@click.option("--attach", metavar="URL", help="Drill a shield that is already running here (loopback only).")
@click.option(
    "--attach-site", metavar="URL", help="With --attach: the campaign site behind it, for its counters."
)
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="With --attach: the shield's server.state_dir, to follow its mode.",
)
@click.option(
    "--shield-config",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Drill this shield config instead of contrib/drill/shieldwall.toml.",
)
@click.option(
    "--replay",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Visitors replayed from this access log (Combined Log Format) instead of simulated.",
)
@click.option("--speedup", type=float, default=1.0, show_default=True, help="Time compression of --replay.")
@click.option(
    "--hold",
    type=float,
    default=10.0,
    show_default=True,
    help="The shield's calm seconds before each step down ([detector] hold).",
)
@click.option(
    "--json",
    "json_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the scorecard and everything measured here, as JSON.",
)
@click.option(
    "--workdir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where configs, logs, state and reports go. Default: a new directory under /tmp.",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same visitors and attack.")
def drill(json_path: Path | None, workdir: Path | None, **options: object) -> None:  # fmt: skip
    """Rehearse an attack on this machine: the bundled campaign site behind shieldwall on 127.0.0.1,
    visitors throughout (browsers solving challenges, some without JavaScript, supporters donating,
    a verified crawler, people behind one NAT), the attack in the middle, and a scorecard of each
    phase (before / during / after) with times to detect, mitigate and recover. Sends to loopback only."""
    from shieldwall.drill.live import make_view  # noqa: PLC0415 (keeps --help fast)
    from shieldwall.drill.run import DrillError, run_drill  # noqa: PLC0415
    from shieldwall.drill.summary import print_results, write_json  # noqa: PLC0415

    plan = plan_from_options(**options)  # type: ignore[arg-type]
    if workdir is None:
        workdir = Path(tempfile.mkdtemp(prefix=f"shieldwall-drill-{time.strftime('%Y%m%d-%H%M%S')}-"))
    view = make_view()
    try:
        results = run_drill(plan, workdir, view)
    except DrillError as exc:
        view.close()
        click.echo(f"shieldwall drill: {exc}", err=True)
        sys.exit(EXIT_FAILED)
    view.close()
    reports = print_results(results, sys.stdout)
    if json_path is not None:
        write_json(json_path, plan, results, reports)
        click.echo(f"scorecard written to {json_path}")
