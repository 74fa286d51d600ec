"""`shieldwall demo` (what `make demo` runs): the whole story of a flood and the shield, on loopback."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from shieldwall.cli.options import CONTEXT


@click.command(context_settings=CONTEXT, short_help="Watch shieldwall stop a flood, on loopback (~90 s).")
@click.option("--quick", is_flag=True, help="Shorter phases (about 35 s in all), for tests and a first look.")
@click.option(
    "--keep-running", is_flag=True, help="Keep the site and the shield up afterwards, until Ctrl-C."
)
@click.option(
    "--workdir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Where configs, logs, the incident and its reports go. Default: a new directory under /tmp.",
)
def demo(quick: bool, keep_running: bool, workdir: Path | None) -> None:
    """Watch shieldwall work, on this machine only: a campaign site behind the shield, visitors
    browsing and donating, 30 s of peace, then a distributed flood at 20x the site's capacity. The
    shield detects it, challenges, mines a signature and keeps supporters first; the flood stops and
    the shield steps back. A live view, then the scorecard and the incident's HTML and STIX reports.
    Exit status 0 when it all went so."""
    from shieldwall.drill.demo import main  # noqa: PLC0415 (keeps --help fast)

    sys.exit(main(quick=quick, keep_running=keep_running, workdir=workdir))
