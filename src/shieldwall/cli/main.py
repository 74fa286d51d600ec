"""The `shieldwall` command: run the shield, check a configuration, or watch the demo.

Options only ever become config overrides (dotted keys applied over the file by load_config), so the
command line, the config file and the supervisor's reload all go through one validator. Heavy modules
(the supervisor, the drill, the TLS loader) are imported where used: `--help` and `check-config` stay fast
and work even where the data plane cannot start.

Exit codes: 0 ok; 2 the command line or the configuration is wrong (click's usage errors use 2 too);
1 shieldwall could not start serving (the CLI's own case: a listener cannot be bound); other codes
come from the supervisor or the demo."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from shieldwall import __version__
from shieldwall.cli.admin import admin
from shieldwall.cli.bans import bans
from shieldwall.cli.challenge import challenge
from shieldwall.cli.demo import demo
from shieldwall.cli.drill import drill
from shieldwall.cli.errors import EXIT_BAD_CONFIG, exit_on_config_error
from shieldwall.cli.export import export_group
from shieldwall.cli.mode import mode
from shieldwall.cli.report import report
from shieldwall.cli.top import top
from shieldwall.config import Settings, load_config
from shieldwall.config.load import read_toml, with_value
from shieldwall.config.schema import parse_host_port, parse_origin_url
from shieldwall.dataplane.config_files import check_files

EXIT_CANNOT_LISTEN = 1

_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _check_upstream(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            parse_origin_url(value)
        except ValueError as exc:
            raise click.BadParameter(with_value(str(exc), value)) from None
    return value


def _check_listen(_ctx: click.Context, _param: click.Parameter, values: Sequence[str]) -> Sequence[str]:
    for value in values:
        try:
            parse_host_port(value)
        except ValueError as exc:
            raise click.BadParameter(with_value(str(exc), value)) from None
    return values


def _check_workers(_ctx: click.Context, _param: click.Parameter, value: int | None) -> int | None:
    if value is not None and value < 0:
        raise click.BadParameter(with_value("must be at least 0; 0 means one per CPU core", value))
    return value


def _sets_upstream_url(raw: dict[str, Any]) -> bool:
    """Whether the file itself names the origin; the schema's default URL is only a placeholder."""
    section = raw.get("upstream")
    return isinstance(section, dict) and "url" in section


def _summary(settings: Settings, *, upstream_explicit: bool) -> list[str]:
    """The few facts an operator checks before a deploy: where clients connect, where traffic goes."""

    def describe(address: str, tls: bool, proxy_protocol: bool) -> str:
        tags = [tag for tag, on in (("TLS", tls), ("PROXY protocol", proxy_protocol)) if on]
        return f"{address} ({', '.join(tags)})" if tags else address

    listeners = [describe(lst.address, lst.tls, lst.proxy_protocol) for lst in settings.listeners]
    upstream = settings.upstream.url
    if not upstream_explicit:
        upstream += " (default; `shieldwall run` needs --upstream)"
    workers = settings.server.workers
    return [
        f"listeners: {', '.join(listeners)}",
        f"upstream:  {upstream}",
        f"workers:   {workers if workers else '0 (one per CPU core)'}",
    ]


@click.group(context_settings=_CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="shieldwall", message="%(prog)s %(version)s")
def main() -> None:
    """shieldwall keeps floods of HTTP requests away from a website: a strict reverse proxy that
    sits in front of your origin server and sheds abusive traffic before it gets there.

    \b
    Try it:    shieldwall demo
    Check:     shieldwall check-config shieldwall.toml
    Protect:   shieldwall run --upstream http://127.0.0.1:8000 --listen 0.0.0.0:80

    Every setting and its default: docs/configuration.md and examples/shieldwall.toml.
    """


@main.command(context_settings=_CONTEXT, short_help="Protect an origin server (the long-running command).")
@click.option(
    "--upstream",
    metavar="URL",
    callback=_check_upstream,
    help="Origin to protect, http://HOST:PORT. Overrides [upstream].url; required unless --config sets it.",
)
@click.option(
    "--listen",
    metavar="HOST:PORT",
    multiple=True,
    callback=_check_listen,
    help="Accept clients here; repeat for more. Replaces [[listeners]]. Default: 127.0.0.1:8080.",
)
@click.option(
    "--config",
    "config_path",
    metavar="FILE",
    type=click.Path(path_type=Path),
    help="TOML configuration file. Default: none, every setting at its default.",
)
@click.option(
    "--workers",
    metavar="N",
    type=int,
    callback=_check_workers,
    help="Worker processes, 0 = one per CPU core. Overrides [server].workers. Default: 0.",
)
def run(upstream: str | None, listen: Sequence[str], config_path: Path | None, workers: int | None) -> None:
    """Protect an origin: accept clients on the listeners and proxy what passes to the upstream,
    until SIGTERM or Ctrl-C. Options override the config file."""
    overrides: dict[str, Any] = {}
    if upstream is not None:
        overrides["upstream.url"] = upstream
    if listen:
        overrides["listeners"] = [{"address": address} for address in listen]
    if workers is not None:
        overrides["server.workers"] = workers
    with exit_on_config_error():
        settings = load_config(config_path, overrides)
        explicit = upstream is not None or (
            config_path is not None and _sets_upstream_url(read_toml(config_path))
        )
    if not explicit:
        raise click.UsageError(
            "Missing option '--upstream'. Name the origin to protect with --upstream http://HOST:PORT "
            "or set url in the [upstream] section of the --config file."
        )
    with exit_on_config_error():
        check_files(settings, str(config_path or "<command line>"))
    from shieldwall.dataplane.listen import ListenError  # noqa: PLC0415 (keeps --help fast)
    from shieldwall.dataplane.supervisor import run as run_supervisor  # noqa: PLC0415
    from shieldwall.state.ban_store import StateDirError  # noqa: PLC0415

    try:
        code = run_supervisor(settings, config_path=config_path, overrides=overrides)
    except StateDirError as exc:
        click.echo(f"shieldwall: {exc}", err=True)
        sys.exit(EXIT_BAD_CONFIG)
    except ListenError as exc:
        click.echo(f"shieldwall: {exc}", err=True)
        sys.exit(EXIT_CANNOT_LISTEN)
    sys.exit(code)


@main.command(
    "check-config", context_settings=_CONTEXT, short_help="Validate a config file; exit 2 on problems."
)
@click.argument("file", type=click.Path(path_type=Path))
def check_config(file: Path) -> None:
    """Validate FILE, and read the files it names (TLS certificates, crawler lists, ASN and country
    data), without starting anything. Prints "FILE: OK" and a summary, or every problem (key path,
    what is wrong, what to do) on stderr and exits 2."""
    with exit_on_config_error():
        settings = load_config(file)
        explicit = _sets_upstream_url(read_toml(file))
        check_files(settings, str(file))
    click.echo(f"{file}: OK")
    for line in _summary(settings, upstream_explicit=explicit):
        click.echo(f"  {line}")


main.add_command(admin)
main.add_command(bans)
main.add_command(demo)
main.add_command(drill)
main.add_command(export_group)
main.add_command(mode)
main.add_command(challenge)
main.add_command(report)
main.add_command(top)
