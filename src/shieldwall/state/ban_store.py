"""Bans that survive restarts and reach every worker: JSON files in `server.state_dir`/bans/.

One file per writer, so no two processes ever write the same file and workers need no locks:
- bans/manual.json: the operator's, written by `shieldwall bans add/remove`: manual bans, and lifts
  (limiter.bans.Lift) of bans that workers saved, which only their workers may rewrite;
- bans/worker-<N>.json: worker N's own bans (BanTable.own) and its offenders' ban chains
  (BanTable.chains), rewritten whole when they change;
- bans/cluster.json and bans/cluster-<N>.json: with `[cluster]`, the bans and lifts of the whole cluster
  as the shared Redis holds them, written by this node's control process (control/cluster_bans.py):
  cluster.json whole now and then, and each batch of new bans since in a small cluster-<N>.json, so a
  worker's reload parses only what is new.

A file is one JSON object (times in epoch seconds, targets as limiter.bans.ban_target spells them):
    {"format": "shieldwall-bans/1",
     "bans": [{"target": "203.0.113.7", "until": 1700000600.0, "reason": "30 refusals within 60 s",
               "source": "auto", "level": 1, "since": 1700000000.0}, ...],
     "lifts": [{"target": "203.0.113.7", "at": 1700000300.0, "until": 1700000600.0}, ...],
     "chains": [{"target": "203.0.113.7", "length": 2, "remember_until": 1700087000.0}, ...]}
"until" is null for a permanent manual ban, and for a lift while one of the bans it lifted was
permanent. "chains" (only in a worker's file, and only when it has some) keeps an offender's
escalation past the end of its last ban; it was added later, and a file without it reads as having
none, so the format name did not change. Only the writer's own load() reads chains back: load_all()
(every worker's reload, and `shieldwall bans list`) neither parses nor returns them, as they ban no one.

Every write goes to a temporary file in the same directory (".<writer>.json.*.tmp", never read), is
fsynced, replaces the file with os.replace, and the directory is fsynced: a reader sees the old file
or the new one, never half of one, across a crash or a power cut too. A file that cannot be read or
parsed is reported and skipped, and the other files still count. A worker polls `changed_since` (one
stat per file) and reloads only when something changed. All times are wall-clock epoch seconds.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

from shieldwall.core.atomic_file import write_atomic
from shieldwall.limiter.bans import Ban, Chain, Lift, apply_lifts, ban_target

BANS_DIR: Final = "bans"
MANUAL: Final = "manual"
CLUSTER: Final = "cluster"
_WRITER: Final = re.compile(r"manual|cluster(?:-[0-9]{1,9})?|worker-[0-9]{1,6}")
_FORMAT: Final = "shieldwall-bans/1"
_MANUAL_LOCK: Final = ".manual.lock"
# Filesystem timestamps come from a coarse clock (one kernel tick, 4-10 ms); two writes within one tick
# can leave the same mtime. A stamp taken this soon after a write does not vouch for it (as git does
# for its index): the next poll reloads once more.
_RACY_NS: Final = 100_000_000
_T = TypeVar("_T")


class StateDirError(Exception):
    """The state directory cannot be created, read or written; the message says what to do."""


@dataclass(slots=True)
class Contents:
    """What a load found: active bans and lifts, chains still remembered (load() only), and one line
    per file (or entry) it had to skip."""

    bans: list[Ban] = field(default_factory=list)
    lifts: list[Lift] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    chains: list[Chain] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Stamp:
    """What the ban files looked like at one poll: (name, inode, size, mtime) each."""

    files: tuple[tuple[str, int, int, int], ...]
    taken_ns: int

    @property
    def settled(self) -> bool:
        return all(mtime < self.taken_ns - _RACY_NS for _, _, _, mtime in self.files)


def worker_writer(index: int) -> str:
    """The writer name of worker `index`: its file is bans/worker-<index>.json."""
    return f"worker-{index}"


def prepare(state_dir: Path) -> Path:
    """state_dir/bans, created private (0700, state_dir too) when missing. Raises StateDirError when it
    cannot be created or written, so a worker fails at start, not at its first ban."""
    directory = state_dir / BANS_DIR
    for path in (state_dir, directory):
        if path.is_dir():
            continue
        try:
            path.mkdir(mode=0o700, parents=True)
            path.chmod(0o700)  # mkdir's mode is masked by the umask
        except FileExistsError:
            if not path.is_dir():
                raise StateDirError(_fix(f"{path} exists and is not a directory")) from None
        except OSError as exc:
            raise StateDirError(_fix(f"cannot create {path} ({exc.strerror})")) from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise StateDirError(_fix(f"{directory} is not writable by this user (uid {os.getuid()})"))
    return directory


def _fix(problem: str) -> str:
    return (
        f"server.state_dir: {problem}; create it for the user shieldwall runs as "
        "(e.g. install -d -m 700 -o shieldwall /var/lib/shieldwall) or set server.state_dir elsewhere"
    )


def save(
    state_dir: Path,
    writer: str,
    bans: Iterable[Ban],
    lifts: Iterable[Lift] = (),
    chains: Iterable[Chain] = (),
) -> None:
    """Replace `writer`'s file with these bans, lifts and chains, atomically and durably. Raises
    StateDirError (the old file stays as it was) when it cannot."""
    if not _WRITER.fullmatch(writer):
        raise ValueError(f"writer must be {MANUAL!r}, {CLUSTER!r}[-<N>] or 'worker-<N>', not {writer!r}")
    directory = prepare(state_dir)
    document = {
        "format": _FORMAT,
        "bans": [ban_entry(ban) for ban in bans],
        "lifts": [lift_entry(lift) for lift in lifts],
    }
    chain_entries = [
        {"target": chain.target, "length": chain.length, "remember_until": chain.remember_until}
        for chain in chains
    ]
    if chain_entries:  # manual.json never has any: it stays as it always was
        document["chains"] = chain_entries
    data = json.dumps(document, separators=(",", ":")).encode()
    path = directory / f"{writer}.json"
    try:
        write_atomic(path, data)
    except OSError as exc:
        raise StateDirError(f"cannot write {path}: {exc.strerror or exc}") from None


def writers(state_dir: Path, prefix: str) -> list[str]:
    """The writers whose files exist and whose names start with `prefix`."""
    return [name[:-5] for name, *_ in _scan(state_dir / BANS_DIR) if name.startswith(prefix)]


def remove(state_dir: Path, writer: str) -> None:
    """Delete `writer`'s file (gone already is fine). Raises StateDirError when it cannot."""
    if not _WRITER.fullmatch(writer):
        raise ValueError(f"not a writer: {writer!r}")
    try:
        (state_dir / BANS_DIR / f"{writer}.json").unlink(missing_ok=True)
    except OSError as exc:
        where = state_dir / BANS_DIR
        raise StateDirError(f"cannot remove {writer}.json from {where}: {exc.strerror}") from None


def ban_entry(ban: Ban) -> dict[str, Any]:
    """A ban as the files (and the cluster's Redis) hold it; parse_ban reads it back."""
    return {
        "target": ban.target,
        "until": ban.until,
        "reason": ban.reason,
        "source": ban.source,
        "level": ban.level,
        "since": ban.since,
    }


def lift_entry(lift: Lift) -> dict[str, Any]:
    """A lift as the files (and the cluster's Redis) hold it; parse_lift reads it back."""
    return {"target": lift.target, "at": lift.at, "until": lift.until}


def load(state_dir: Path, writer: str, now: float) -> Contents:
    """One writer's file, chains included: for the CLI (manual.json) and for a worker taking back its
    own bans and chains after a restart (BanTable.adopt). A missing file is empty."""
    contents = Contents()
    _add_active(contents, _parse(state_dir / BANS_DIR / f"{writer}.json", chains=True), now)
    return contents


FileCache = dict[str, tuple[tuple[int, int, int], Contents]]


def load_all(
    state_dir: Path, now: float, cache: FileCache | None = None, *, skip: str | None = None
) -> Contents:
    """Every writer's file: the active bans but those a lift covers (a target may appear more than
    once: BanTable.merge keeps the ban that ends last), the active lifts, and the problems; no chains
    (a worker needs only its own, from load()).

    Parsing costs ~4 µs a ban (0.4 s for 100,000), so a worker reloading twice a second passes a
    `cache` (an empty dict it keeps), and a file whose inode, size and mtime are those of its last
    parse is not parsed again; and it passes its own writer name as `skip`: its table holds those bans
    already, and its own saves then cost it no reload (`skip` covers the writer's segments too:
    "cluster" skips cluster-<N>.json)."""
    directory = state_dir / BANS_DIR
    contents = Contents()
    skipped = (f"{skip}.json", f"{skip}-") if skip is not None else ()
    listed = [entry for entry in _scan(directory) if not (skipped and entry[0].startswith(skipped))]
    settled = time.time_ns() - _RACY_NS
    for name, inode, size, mtime in listed:
        key = (inode, size, mtime)
        cached = cache.get(name) if cache is not None else None
        if cached is not None and cached[0] == key:
            parsed = cached[1]
        else:
            parsed = _parse(directory / name)
            if cache is not None and mtime < settled:  # see _RACY_NS: a racy mtime may hide a rewrite
                cache[name] = (key, parsed)
        _add_active(contents, parsed, now)
    if cache is not None:
        for name in cache.keys() - {name for name, *_ in listed}:
            del cache[name]
    contents.bans = apply_lifts(contents.bans, contents.lifts)
    return contents


def changed_since(state_dir: Path, stamp: Stamp | None) -> Stamp | None:
    """None when no ban file changed since `stamp` was taken; otherwise a new stamp to keep. Take it
    before loading: a write during the load then shows at the next poll."""
    taken = time.time_ns()
    files = _scan(state_dir / BANS_DIR)
    if stamp is not None and files == stamp.files and stamp.settled:
        return None
    return Stamp(files, taken)


@contextlib.contextmanager
def editing_manual(state_dir: Path, now: float) -> Iterator[Contents]:
    """manual.json's active contents to change in place; saved, if changed, when the block ends
    without an exception (expired bans and lifts are dropped then).
    Holds a lock meanwhile, so two operators at once cannot lose each other's change, and refuses
    (StateDirError) to rewrite a file it could not read in full."""
    directory = prepare(state_dir)
    with open(directory / _MANUAL_LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        contents = load(state_dir, MANUAL, now)
        if contents.problems:
            raise StateDirError(
                f"{contents.problems[0]}; fix or move the file before changing manual bans, "
                "so nothing in it is lost"
            )
        before = (list(contents.bans), list(contents.lifts))
        yield contents
        if (contents.bans, contents.lifts) != before:  # an unchanged file is not rewritten: no reloads
            save(state_dir, MANUAL, contents.bans, contents.lifts)


def _scan(directory: Path) -> tuple[tuple[str, int, int, int], ...]:
    found = []
    try:
        with os.scandir(directory) as entries:
            for entry in entries:
                if not (entry.name.endswith(".json") and _WRITER.fullmatch(entry.name[:-5])):
                    continue
                try:
                    info = entry.stat()
                except FileNotFoundError:
                    continue  # replaced or removed since the listing
                found.append((entry.name, info.st_ino, info.st_size, info.st_mtime_ns))
    except FileNotFoundError:
        return ()
    except OSError as exc:
        raise StateDirError(_fix(f"cannot list {directory} ({exc.strerror})")) from None
    return tuple(sorted(found))


def _parse(path: Path, *, chains: bool = False) -> Contents:
    """Every ban and lift of one file, and its chains if asked, expired or not, or a problem saying why
    there are none."""
    contents = Contents()
    try:
        document = json.loads(path.read_bytes())
    except FileNotFoundError:
        return contents
    except OSError as exc:
        contents.problems.append(f"{path}: cannot read it ({exc.strerror}); skipped")
        return contents
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        contents.problems.append(f"{path}: not valid JSON ({exc}); skipped")
        return contents
    if not isinstance(document, dict) or document.get("format") != _FORMAT:
        contents.problems.append(f'{path}: not a shieldwall ban file (no "format": {_FORMAT!r}); skipped')
        return contents
    bad: list[str] = []
    contents.bans = _entries(document, "bans", parse_ban, bad)
    contents.lifts = _entries(document, "lifts", parse_lift, bad)
    if chains:
        contents.chains = _entries(document, "chains", _chain, bad)
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        contents.problems.append(f"{path}: skipped {bad[0]}{more}")
    return contents


def _add_active(contents: Contents, parsed: Contents, now: float) -> None:
    contents.bans += [ban for ban in parsed.bans if ban.end > now]
    contents.lifts += [lift for lift in parsed.lifts if lift.until is None or lift.until > now]
    contents.chains += [chain for chain in parsed.chains if chain.remember_until > now]
    contents.problems += parsed.problems


def _entries(document: dict[str, Any], key: str, parse: Callable[[Any], _T], bad: list[str]) -> list[_T]:
    """The entries of one list that parse; the others are described in `bad`."""
    entries = document.get(key, [])
    if not isinstance(entries, list):
        bad.append(f"{key}: not a list")
        return []
    parsed = []
    for index, entry in enumerate(entries):
        try:
            parsed.append(parse(entry))
        except ValueError as exc:
            bad.append(f"{key}[{index}]: {exc}")
    return parsed


def parse_ban(entry: Any) -> Ban:
    _expect_object(entry)
    source = entry.get("source")
    if source not in ("auto", "manual"):
        raise ValueError('source must be "auto" or "manual"')
    until = _optional_time(entry, "until") if source == "manual" else _time(entry, "until")
    level = entry.get("level")
    if type(level) is not int or level < 0:
        raise ValueError("level must be a whole number >= 0")
    reason = entry.get("reason")
    if not isinstance(reason, str):
        raise ValueError("reason must be a string")
    target = _target(entry)
    since = _time(entry, "since")
    return Ban(target, until, reason, "auto" if source == "auto" else "manual", level, since)


def parse_lift(entry: Any) -> Lift:
    _expect_object(entry)
    return Lift(_target(entry), _time(entry, "at"), _optional_time(entry, "until"))


def _chain(entry: Any) -> Chain:
    _expect_object(entry)
    length = entry.get("length")
    if type(length) is not int or length < 1:
        raise ValueError("length must be a whole number >= 1")
    return Chain(_target(entry), length, _time(entry, "remember_until"))


def _expect_object(entry: Any) -> None:
    if not isinstance(entry, dict):
        raise ValueError("not an object")


def _target(entry: dict[str, Any]) -> str:
    target = entry.get("target")
    if not isinstance(target, str):
        raise ValueError("target must be a string")
    return ban_target(target)


def _time(entry: dict[str, Any], key: str) -> float:
    value = entry.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise ValueError(f"{key} must be a number of seconds since the epoch")
    return float(value)


def _optional_time(entry: dict[str, Any], key: str) -> float | None:
    return None if entry.get(key) is None else _time(entry, key)
