"""`shieldwall bans`: see, add and remove bans by hand, in the store every worker reads (state/ban_store.py),
so a change reaches every worker within a second and survives restarts.

`add` and `remove` change bans/manual.json only. A ban a worker made lives in that worker's own file,
which no one else writes, so `remove` lifts it instead: it records a lift (limiter.bans.Lift) in
manual.json, and every ban on the target that began before the lift stops counting, in every worker,
and drops out of their files. The lift goes when the bans it lifted would have ended anyway.

Exit codes: 0 done (also when there was nothing to remove); 2 bad input, a bad configuration, or a
state directory that cannot be used."""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from shieldwall.cli.errors import exit_on_config_error
from shieldwall.config import Settings, load_config
from shieldwall.config.load import with_value
from shieldwall.limiter.bans import Ban, Lift, ban_target, strongest
from shieldwall.net.client_identity import client_prefix
from shieldwall.net.networks import NetworkSet
from shieldwall.state import ban_store

EXIT_BAD_INPUT = 2

_CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
_DURATION = re.compile(r"(?:[0-9]{1,9}[smhd])+")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_MAX_REASON = 200

_config_option = click.option(
    "--config",
    "config_path",
    metavar="FILE",
    type=click.Path(path_type=Path),
    help="The shield's TOML configuration, for server.state_dir and bans.allowlist. "
    "Default: none, every setting at its default.",
)


def parse_duration(text: str) -> float | None:
    """'90s', '10m', '1h', '2d', '1d12h' → seconds; 'permanent' → None. ValueError otherwise."""
    text = text.strip().lower()
    if text == "permanent":
        return None
    if not _DURATION.fullmatch(text):
        raise ValueError("not a duration; write e.g. 90s, 10m, 1h, 2d, 1d12h, or permanent")
    seconds = sum(int(count) * _UNIT_SECONDS[unit] for count, unit in re.findall(r"([0-9]+)([smhd])", text))
    if seconds == 0:
        raise ValueError("a ban must last longer than 0 s")
    return float(seconds)


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
    if len(value) > _MAX_REASON or not value.isprintable():
        raise click.BadParameter(f"write one line of at most {_MAX_REASON} printable characters")
    return value


def _fail(message: str) -> None:
    click.echo(f"shieldwall: {message}", err=True)
    sys.exit(EXIT_BAD_INPUT)


def _settings(config_path: Path | None) -> Settings:
    """The configuration, or every problem in it on stderr and exit 2 (as `check-config` prints them)."""
    with exit_on_config_error():
        settings = load_config(config_path)
    return settings


@contextmanager
def _state_dir_errors() -> Iterator[None]:
    try:
        yield
    except ban_store.StateDirError as exc:
        _fail(str(exc))


def _warn(problems: list[str]) -> None:
    for problem in problems:
        click.echo(f"warning: {problem}", err=True)


@click.group(context_settings=_CONTEXT)
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


@bans.command("list", context_settings=_CONTEXT)
@_config_option
def list_bans(config_path: Path | None) -> None:
    """Show the active bans, newest first: manual ones and those the workers made."""
    settings = _settings(config_path)
    now = time.time()
    with _state_dir_errors():
        contents = ban_store.load_all(settings.server.state_dir, now)
    _warn(contents.problems)
    active = sorted(strongest(contents.bans).values(), key=lambda ban: ban.since, reverse=True)
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


@bans.command("add", context_settings=_CONTEXT)
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
@_config_option
def add(target: str, duration: float | None, reason: str, config_path: Path | None) -> None:
    """Ban TARGET: one address (203.0.113.7, 2001:db8::7) or one client prefix, an IPv4 /24
    (203.0.113.0/24) or an IPv6 /64. Banning it again replaces the earlier manual ban."""
    settings = _settings(config_path)
    allowlist = NetworkSet(settings.bans.allowlist)
    if allowlist.covers(target):
        _fail(
            f"{target} is in bans.allowlist, which wins over every ban: it would never be refused. "
            "Take it out of the allowlist first if you mean to ban it."
        )
    now = time.time()
    ban = Ban(target, None if duration is None else now + duration, reason, "manual", 0, now)
    with _state_dir_errors(), ban_store.editing_manual(settings.server.state_dir, now) as manual:
        manual.bans = [old for old in manual.bans if old.target != target] + [ban]
    if ban.until is None:
        click.echo(f"banned {target} permanently (until removed)")
    else:
        click.echo(f"banned {target}, expires {expiry_words(ban.until, now)}")
    if allowlist.overlaps(target):
        click.echo(f"note: the allowlisted addresses in {target} are still let in")


@bans.command("remove", context_settings=_CONTEXT)
@click.argument("target", callback=_target)
@_config_option
def remove(target: str, config_path: Path | None) -> None:
    """Unban TARGET: remove its manual ban, and lift the bans workers made on it (they count again
    only if it offends again)."""
    settings = _settings(config_path)
    state_dir = settings.server.state_dir
    now = time.time()
    with _state_dir_errors(), ban_store.editing_manual(state_dir, now) as manual:
        everything = ban_store.load_all(state_dir, now)
        manual_ones = [ban for ban in manual.bans if ban.target == target]
        workers_ones = [ban for ban in everything.bans if ban.target == target and ban not in manual_ones]
        manual.bans = [ban for ban in manual.bans if ban.target != target]
        if workers_ones:
            ends = [ban.until for ban in workers_ones if ban.until is not None]
            lasts = max(ends) if len(ends) == len(workers_ones) else None  # None: one was permanent
            manual.lifts.append(Lift(target, now, lasts))
    _warn(everything.problems)
    done = ["removed its manual ban"] if manual_ones else []
    if workers_ones:
        done.append(f"lifted {len(workers_ones)} ban{'s' if len(workers_ones) > 1 else ''} made by workers")
    click.echo(f"{target}: {' and '.join(done)}" if done else f"{target} was not banned")
    if "/" not in target:
        prefix = client_prefix(target)
        if any(ban.target == prefix for ban in everything.bans):
            click.echo(f"note: its prefix {prefix} is banned too; remove that as well to let it in")
