"""`shieldwall admin`: the address of the dashboard with its token, and the token itself.

The control process makes the token on its first start (`[admin] token_file`, by default
`server.state_dir`/admin/token); these commands read it, and `token --rotate` replaces it (the running
API takes the new one at once). Exit codes: 0 done; 2 a bad configuration, or no usable token file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import NoReturn

import click

from shieldwall.admin.auth import TokenFileError, read_token, rotate
from shieldwall.cli.options import CONTEXT, config_option, load_settings
from shieldwall.config import Settings

EXIT_BAD_INPUT = 2
_ANY_ADDRESS = {"0.0.0.0": "127.0.0.1", "::": "::1"}  # listening everywhere: this machine's is one of them


def _fail(message: str) -> NoReturn:
    click.echo(f"shieldwall: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def admin_token(settings: Settings) -> str:
    path = settings.admin.token_path(settings.server.state_dir)
    try:
        return read_token(path)
    except FileNotFoundError:
        _fail(
            f"no admin token in {path} yet: `shieldwall run` makes it when it starts (with [admin] "
            "enabled), or make one now with `shieldwall admin token --rotate`"
        )
    except PermissionError:
        _fail(f"cannot read {path}: run this as the user shieldwall runs as (or with sudo)")
    except TokenFileError as exc:
        _fail(str(exc))


def base_url(settings: Settings) -> str:
    """http://HOST:PORT/ of the admin listener, as reached from this machine."""
    host, port = settings.admin.host_port
    host = _ANY_ADDRESS.get(host, host)
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


@click.group(context_settings=CONTEXT)
def admin() -> None:
    """The admin listener: the dashboard, the JSON API (docs/admin-api.md) and /metrics, served by
    the shield itself on [admin] listen (127.0.0.1:9180 by default).

    \b
    shieldwall admin url --config /etc/shieldwall/shieldwall.toml     # open it in a browser
    shieldwall admin token --config ...                                # for curl or scripts
    shieldwall admin token --rotate --config ...                       # if it leaked
    """


@admin.command("url", context_settings=CONTEXT)
@config_option
def url(config_path: Path | None) -> None:
    """Print the dashboard's address with the token in its fragment (#token=...), which the browser
    keeps to itself. From another machine, tunnel the port first: ssh -L 9180:127.0.0.1:9180 HOST."""
    settings = load_settings(config_path)
    token = admin_token(settings)
    if not settings.admin.enabled:
        click.echo("warning: [admin] enabled = false: nothing serves this address", err=True)
    click.echo(f"{base_url(settings)}#token={token}")


@admin.command("token", context_settings=CONTEXT)
@click.option(
    "--rotate", "rotate_it", is_flag=True, help="Replace the token; the old one stops working at once."
)
@config_option
def token(rotate_it: bool, config_path: Path | None) -> None:
    """Print the bearer token (send it as 'Authorization: Bearer TOKEN'), or make a new one."""
    settings = load_settings(config_path)
    if not rotate_it:
        click.echo(admin_token(settings))
        return
    path = settings.admin.token_path(settings.server.state_dir)
    try:
        click.echo(rotate(path))
    except TokenFileError as exc:
        _fail(str(exc))
    click.echo(f"wrote a new token to {path}; open dashboards need the new address", err=True)
