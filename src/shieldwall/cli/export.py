"""`shieldwall export bans`: the active bans for another firewall or an upstream provider, read from the
ban store every worker shares (state/ban_store.py) and written by firewall/export.py.

Exit codes: 0 done (an empty export too); 2 bad input, a bad configuration, or a state directory or
output file that cannot be used."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from pathlib import Path

import click

from shieldwall.cli.options import CONTEXT, config_option, load_settings
from shieldwall.config.load import with_value
from shieldwall.core.atomic_file import write_atomic
from shieldwall.firewall.entries import Network, ban_set
from shieldwall.firewall.export import FORMATS, export
from shieldwall.net.networks import parse_network
from shieldwall.state import ban_store

EXIT_BAD_INPUT = 2


def _destinations(_ctx: click.Context, _param: click.Parameter, values: Sequence[str]) -> tuple[Network, ...]:
    networks = []
    for value in values:
        try:
            networks.append(parse_network(value))
        except ValueError:
            raise click.BadParameter(
                with_value("not a CIDR; write it like 192.0.2.0/24 or 2001:db8::/48", value)
            ) from None
    return tuple(networks)


def _fail(message: str) -> None:
    click.echo(f"shieldwall: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


@click.group("export", context_settings=CONTEXT)
def export_group() -> None:
    """Write shieldwall's state for other tools.

    \b
    shieldwall export bans --format nft -o /etc/shieldwall/bans.nft --config ...
    shieldwall export bans --format flowspec --destination 192.0.2.0/24 --config ...
    """


@export_group.command("bans", context_settings=CONTEXT)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    required=True,
    help="nft: an nftables script (nft -f FILE); ipset: ipset restore input (hash:net, timeouts); "
    "cidr-list: one CIDR a line; flowspec: ExaBGP FlowSpec routes for your ISP or scrubbing service.",
)
@click.option(
    "-o",
    "--output",
    metavar="FILE",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write here (replaced atomically, mode 0600) instead of to standard output.",
)
@click.option(
    "--destination",
    "destinations",
    metavar="CIDR",
    multiple=True,
    callback=_destinations,
    help="flowspec only: your own prefix, which the rules then match as destination (most providers "
    "require it). Repeat for more.",
)
@config_option
def export_bans(
    fmt: str, output: Path | None, destinations: tuple[Network, ...], config_path: Path | None
) -> None:
    """Write the active bans (the operator's, the workers', with [cluster] the other nodes') in another
    tool's format. Bans that overlap bans.allowlist are left out. docs/firewall.md says how to load each
    format."""
    if destinations and fmt != "flowspec":
        raise click.UsageError("--destination is for --format flowspec only")
    settings = load_settings(config_path)
    now = time.time()
    try:
        contents = ban_store.load_all(settings.server.state_dir, now)
    except ban_store.StateDirError as exc:
        _fail(str(exc))
        return
    for problem in contents.problems:
        click.echo(f"warning: {problem}", err=True)
    allowlist = [parse_network(cidr) for cidr in settings.bans.allowlist]
    bans = ban_set(contents.bans, now, allowlist)
    if bans.allowlisted:
        click.echo(
            f"note: left out {bans.allowlisted} ban(s) overlapping bans.allowlist; the shield still "
            "enforces them on the other addresses",
            err=True,
        )
    text = export(fmt, bans, now, table=settings.firewall.table, destinations=destinations)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        write_atomic(output, text.encode())
    except OSError as exc:
        _fail(f"cannot write {output}: {exc.strerror or exc}")
    click.echo(f"wrote {len(bans)} entries to {output}", err=True)
