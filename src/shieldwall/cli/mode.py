"""`shieldwall mode`: see the mode the detector chose (normal, elevated, under_attack), and pin or unpin
it by hand, e.g. "under_attack" before an announcement you know will draw a flood.

The control process applies a pin within a second and records who pinned it in the incident timeline.
Exit codes: 0 done; 2 bad input, a bad configuration, or a state directory that cannot be used."""

from __future__ import annotations

import getpass
import sys
import time
from pathlib import Path

import click

from shieldwall.cli.bans import expiry_words, parse_duration
from shieldwall.cli.options import CONTEXT, config_option, load_settings
from shieldwall.config.load import with_value
from shieldwall.control.state import STATE_FILE, ControlState, Pin, control_dir, write_pin
from shieldwall.detector.events import Mode

EXIT_BAD_INPUT = 2


def _fail(message: str) -> None:
    click.echo(f"shieldwall: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


@click.group(context_settings=CONTEXT)
def mode() -> None:
    """See or pin the protection mode: normal, elevated or under_attack. The detector moves between
    them by itself; a pin holds one until it runs out or is lifted.

    \b
    shieldwall mode status --config /etc/shieldwall/shieldwall.toml
    shieldwall mode pin under_attack --for 2h --reason "debate tonight" --config ...
    shieldwall mode unpin --config ...
    """


@mode.command("status", context_settings=CONTEXT)
@config_option
def status(config_path: Path | None) -> None:
    """Show the mode in force, whether it is pinned, the open incident and the attack signatures."""
    settings = load_settings(config_path)
    path = settings.server.state_dir / "control" / STATE_FILE
    try:
        state = ControlState.from_json(path.read_bytes())
    except FileNotFoundError:
        click.echo("mode: normal (the control process has written no state yet)")
        return
    except (OSError, ValueError) as exc:
        _fail(f"cannot read {path}: {exc}")
        return
    age = time.time() - state.updated
    click.echo(f"mode: {state.mode.value}{' (pinned)' if state.pinned else ''}, as of {age:.0f} s ago")
    if state.incident:
        click.echo(f"incident: {state.incident}")
    for signature in state.signatures:
        click.echo(
            f"signature {signature.id} ({signature.action}): {signature.describe()}; "
            f"{signature.coverage:.0%} of the attack, {signature.collateral:.2%} of normal traffic"
        )


@mode.command("pin", context_settings=CONTEXT)
@click.argument("mode_name", metavar="MODE", type=click.Choice([m.value for m in Mode]))
@click.option("--for", "duration", default="1h", show_default=True, help="e.g. 30m, 2h, 1d, permanent")
@click.option("--reason", default="", help="why, for the incident timeline")
@config_option
def pin(mode_name: str, duration: str, reason: str, config_path: Path | None) -> None:
    """Hold MODE until --for runs out (or `mode unpin`)."""
    try:
        seconds = parse_duration(duration)
    except ValueError as exc:
        _fail(with_value(str(exc), duration))
        return
    settings = load_settings(config_path)
    now = time.time()
    until = None if seconds is None else now + seconds
    _write(settings.server.state_dir, Pin(Mode(mode_name), until, _who(), reason, now))
    click.echo(f"pinned {mode_name}, {'until unpinned' if until is None else expiry_words(until, now)}")


@mode.command("unpin", context_settings=CONTEXT)
@config_option
def unpin(config_path: Path | None) -> None:
    """Lift a pin: the detector decides again."""
    settings = load_settings(config_path)
    _write(settings.server.state_dir, Pin(None, None, _who(), "", time.time()))
    click.echo("unpinned: the detector decides the mode again")


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "operator"


def _write(state_dir: Path, pin: Pin) -> None:
    try:
        control_dir(state_dir)
        write_pin(state_dir, pin)
    except OSError as exc:
        _fail(f"cannot write to {state_dir}: {exc.strerror or exc}")
