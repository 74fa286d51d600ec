"""The operator's bans, for every front end (the `shieldwall bans` CLI, the admin API): list, add and
remove them in the ban store (ban_store.py) exactly one way.

`add` and `remove` change bans/manual.json only. A ban a worker made lives in that worker's own file,
which no one else writes, so `remove` lifts it instead: it records a lift (limiter.bans.Lift) in
manual.json, and every ban on the target that began before the lift stops counting, in every worker,
and drops out of their files. The lift goes when the bans it lifted would have ended anyway.
Each raises ban_store.StateDirError when the state directory cannot be used."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from shieldwall.limiter.bans import Ban, Lift, strongest
from shieldwall.net.client_identity import client_prefix
from shieldwall.net.networks import NetworkSet
from shieldwall.state import ban_store

MAX_REASON: Final = 200


def check_reason(text: str) -> str:
    """`text` if it may be kept with a ban (one short printable line); ValueError otherwise."""
    if len(text) > MAX_REASON or not text.isprintable():
        raise ValueError(f"write one line of at most {MAX_REASON} printable characters")
    return text


def active(state_dir: Path, now: float) -> tuple[list[Ban], list[str]]:
    """The bans in force, the strongest one per target, newest first; and the files it had to skip."""
    contents = ban_store.load_all(state_dir, now)
    bans = sorted(strongest(contents.bans).values(), key=lambda ban: ban.since, reverse=True)
    return bans, contents.problems


def add(state_dir: Path, ban: Ban, allowlist: NetworkSet) -> bool:
    """Put a manual ban in force; it replaces an earlier manual ban on the same target. ValueError (and
    nothing changes) when `allowlist` (bans.allowlist) covers the target: the ban could never refuse
    anyone. Returns whether some of the target's addresses are allowlisted (they are still let in)."""
    if allowlist.covers(ban.target):
        raise ValueError(
            f"{ban.target} is in bans.allowlist, which wins over every ban: it would never be refused. "
            "Take it out of the allowlist first if you mean to ban it."
        )
    with ban_store.editing_manual(state_dir, ban.since) as manual:
        manual.bans = [old for old in manual.bans if old.target != ban.target] + [ban]
    return allowlist.overlaps(ban.target)


@dataclass(frozen=True, slots=True)
class Removal:
    """What `remove` did: whether it removed a manual ban, how many bans that workers made it lifted,
    the client prefix of an address when that prefix is banned too (it still keeps the address out),
    and the ban files it had to skip."""

    manual: bool
    lifted: int
    prefix_banned: str | None
    problems: tuple[str, ...]

    @property
    def count(self) -> int:
        return int(self.manual) + self.lifted


def remove(state_dir: Path, target: str, now: float) -> Removal:
    """Unban `target` (as limiter.bans.ban_target spells it): remove its manual ban and lift the bans
    workers made on it (they count again only if it offends again)."""
    with ban_store.editing_manual(state_dir, now) as manual:
        everything = ban_store.load_all(state_dir, now)
        manual_ones = [ban for ban in manual.bans if ban.target == target]
        workers_ones = [ban for ban in everything.bans if ban.target == target and ban not in manual_ones]
        manual.bans = [ban for ban in manual.bans if ban.target != target]
        if workers_ones:
            ends = [ban.until for ban in workers_ones if ban.until is not None]
            lasts = max(ends) if len(ends) == len(workers_ones) else None  # None: one was permanent
            manual.lifts.append(Lift(target, now, lasts))
    prefix = None if "/" in target else client_prefix(target)
    prefix_banned = prefix if any(ban.target == prefix for ban in everything.bans) else None
    return Removal(bool(manual_ones), len(workers_ones), prefix_banned, tuple(everything.problems))
