"""`shieldwall challenge rotate-secret`: replace the master secret that challenge tokens and clearance
cookies are signed with, e.g. after a backup of state_dir leaked. The previous secret keeps verifying for
one `challenge.key_rotation` period, so visitors' cookies stay good; running workers start signing with
the new secret after a reload (SIGHUP) or a restart. (Signing keys are also derived anew every period
by themselves: rotating the master is for when the secret itself may be known to someone.)

Exit codes: 0 done; 2 a bad configuration or a secret file that cannot be used."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from shieldwall.challenge.keys import SecretFileError, rotate
from shieldwall.cli.options import CONTEXT, config_option, load_settings
from shieldwall.dataplane.challenges import secret_path


@click.group(context_settings=CONTEXT)
def challenge() -> None:
    """Manage the challenges' secret.

    \b
    shieldwall challenge rotate-secret --config /etc/shieldwall/shieldwall.toml
    """


@challenge.command("rotate-secret", context_settings=CONTEXT)
@config_option
def rotate_secret(config_path: Path | None) -> None:
    """Replace the master secret (the previous one still verifies for one key_rotation period)."""
    settings = load_settings(config_path)
    path = secret_path(settings.server.state_dir)
    try:
        masters = rotate(path, time.time())
    except FileNotFoundError:
        click.echo(f"shieldwall: no secret at {path} yet: it is made when shieldwall first starts", err=True)
        sys.exit(2)
    except SecretFileError as exc:
        click.echo(f"shieldwall: {exc}", err=True)
        sys.exit(2)
    click.echo(
        f"rotated: {path} now holds generation {masters.generation}; reload shieldwall (kill -HUP "
        "<supervisor pid>) so the workers sign with it. Cookies signed before stay good for one "
        f"key_rotation period ({settings.challenge.key_rotation:g} s)."
    )
