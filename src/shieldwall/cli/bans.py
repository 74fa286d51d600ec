"""`shieldwall bans`: see, add and remove bans by hand, in the store every worker reads (state/ban_store.py),
so a change reaches every worker within a second and survives restarts.

`add` and `remove` change bans/manual.json only, as state/manual_bans.py says (`remove` lifts the bans
workers made on the target rather than rewriting their files).

Exit codes: 0 done (also when there was nothing to remove); 2 bad input, a bad configuration, or a
state directory that cannot be used."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from shieldwall.cli.options import CONTEXT, config_option, load_settings
from shieldwall.config.load import with_value
from shieldwall.core.durations import parse_duration
from shieldwall.limiter.bans import Ban, ban_target
from shieldwall.net.networks import NetworkSet
from shieldwall.state import ban_store, manual_bans

EXIT_BAD_INPUT = 2

__all__ = ["bans", "expiry_words", "parse_duration"]  # parse_duration: `shieldwall mode` reads --for too


def expiry_words(until: float | None, now: float) -> str:
    """'in 9 min (14:32)', 'in 2 d 3 h (2024-05-03 17:00)', or 'never (permanent)': local time."""
    if until is None:
        return "never (permanent)"
    left = max(0, round(until - now))
    days, rest = divmod(left, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    if days:
        words = f"{days} d {hours} h" if hours else f"{days} d"
    elif hours:
        words = f"{hours} h {minutes} min" if minutes else f"{hours} h"
    elif minutes:
        words = f"{minutes} min"
    else:
        words = f"{seconds} s"
    same_day = time.localtime(until)[:3] == time.localtime(now)[:3]
    return f"in {words} ({_local(until, with_date=not same_day)})"


def _local(moment: float, *, with_date: bool = True) -> str:
    return time.strftime("%Y-%m-%d %H:%M" if with_date else "%H:%M", time.localtime(moment))


def _target(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    try:
        return ban_target(value)
    except ValueError as exc:
        raise click.BadParameter(with_value(str(exc), value)) from None


def _duration(_ctx: click.Context, _param: click.Parameter, value: str) -> float | None:
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(with_value(str(exc), value)) from None


def _reason(_ctx: click.Context, _param: click.Parameter, value: str) -> str:
    try:
        return manual_bans.check_reason(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _fail(message: str) -> None:
    click.echo(f"shieldwall: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


@contextmanager
def _state_dir_errors() -> Iterator[None]:
    try:
        yield
    except ban_store.StateDirError as exc:
        _fail(str(exc))


def _warn(problems: list[str]) -> None:
    for problem in problems:
        click.echo(f"warning: {problem}", err=True)


@click.group(context_settings=CONTEXT)
def bans() -> None:
    """See, add and remove bans: clients refused as soon as they connect. Workers ban repeat offenders
    by themselves ([bans] in the config); these commands are for the operator. Changes reach every
    worker within a second and survive restarts (files in server.state_dir).

    \b
    shieldwall bans list --config /etc/shieldwall/shieldwall.toml
    shieldwall bans add 203.0.113.7 --for 2d --reason "credential stuffing" --config ...
    shieldwall bans add 198.51.100.0/24 --for permanent --config ...
    shieldwall bans remove 203.0.113.7 --config ...
    """


@bans.command("list", context_settings=CONTEXT)
@config_option
def list_bans(config_path: Path | None) -> None:
    """Show the active bans, newest first: manual ones and those the workers made."""
    settings = load_settings(config_path)
    now = time.time()
    with _state_dir_errors():
        active, problems = manual_bans.active(settings.server.state_dir, now)
    _warn(problems)
    if not active:
        click.echo("no active bans")
        return
    rows = [("TARGET", "SINCE", "EXPIRES", "SOURCE", "REASON")]
    rows += [
        (
            ban.target,
            _local(ban.since),
            expiry_words(ban.until, now),
            "manual" if ban.source == "manual" else f"auto, ban {ban.level + 1}",
            ban.reason,
        )
        for ban in active
    ]
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]) - 1)]
    for row in rows:
        click.echo(
            "  ".join([*(cell.ljust(width) for cell, width in zip(row[:-1], widths, strict=True)), row[-1]])
        )


@bans.command("add", context_settings=CONTEXT)
@click.argument("target", callback=_target)
@click.option(
    "--for",
    "duration",
    default="1h",
    metavar="DURATION",
    callback=_duration,
    help="How long: 90s, 10m, 1h, 2d, 1d12h, or permanent. Default: 1h.",
)
@click.option(
    "--reason", default="banned by the operator", metavar="TEXT", callback=_reason, help="Kept with the ban."
)
@config_option
def add(target: str, duration: float | None, reason: str, config_path: Path | None) -> None:
    """Ban TARGET: one address (203.0.113.7, 2001:db8::7) or one client prefix, an IPv4 /24
    (203.0.113.0/24) or an IPv6 /64. Banning it again replaces the earlier manual ban."""
    settings = load_settings(config_path)
    now = time.time()
    ban = Ban(target, None if duration is None else now + duration, reason, "manual", 0, now)
    try:
        with _state_dir_errors():
            overlaps = manual_bans.add(settings.server.state_dir, ban, NetworkSet(settings.bans.allowlist))
    except ValueError as exc:  # the allowlist covers it
        _fail(str(exc))
        return
    if ban.until is None:
        click.echo(f"banned {target} permanently (until removed)")
    else:
        click.echo(f"banned {target}, expires {expiry_words(ban.until, now)}")
    if overlaps:
        click.echo(f"note: the allowlisted addresses in {target} are still let in")


@bans.command("remove", context_settings=CONTEXT)
@click.argument("target", callback=_target)
@config_option
def remove(target: str, config_path: Path | None) -> None:
    """Unban TARGET: remove its manual ban, and lift the bans workers made on it (they count again
    only if it offends again)."""
    settings = load_settings(config_path)
    with _state_dir_errors():
        removal = manual_bans.remove(settings.server.state_dir, target, time.time())
    _warn(list(removal.problems))
    done = ["removed its manual ban"] if removal.manual else []
    if removal.lifted:
        done.append(f"lifted {removal.lifted} ban{'s' if removal.lifted > 1 else ''} made by workers")
    click.echo(f"{target}: {' and '.join(done)}" if done else f"{target} was not banned")
    if removal.prefix_banned is not None:
        click.echo(
            f"note: its prefix {removal.prefix_banned} is banned too; remove that as well to let it in"
        )
