"""Incidents that survive restarts: one SQLite database, `server.state_dir`/incidents.sqlite3.

One row per incident, upserted whole: its document (`Incident.to_json()`), its report facts
(`ReportFacts.to_json()`, kept when a save brings none), and the few columns a listing needs (opened,
closed, peak mode and rate) so that listing never parses a document. This module knows nothing of
those types (report/store.py turns rows into them); it stores text.

Who opens it:
- the control process is the one writer: it creates the database (mode 0600; the state directory
  0700 when it makes it) on its first save or prune, upserts the open incident every few seconds and
  once more when it closes, and prunes at start and daily (bounded retention: `prune`);
- readers (the admin API in that same process, `shieldwall report`, the drills) in other processes
  never create it: without a database there are no incidents.
WAL mode lets readers read while the writer writes, each seeing the last committed save; a reader
never blocks the writer. `synchronous=NORMAL`: a power cut may lose the last save or two (seconds of
an incident's series), never corrupt the file. `busy_timeout` covers the rare moments one connection
must wait for another (a checkpoint, the first open).

`PRAGMA user_version` is the schema's version: a database from a newer shieldwall is refused with a
message saying so, never written. When this module creates the schema it imports, in the same
transaction, the files earlier builds kept each incident in: `incidents/<ID>.json` and, optionally,
`incidents/<ID>.facts.json`, the same two texts. Those files are then never read again (they stay,
for the operator to delete); a file that cannot be read is logged and skipped.

Threads: each process has one connection per database (`shared()`), opened lazily, guarded by a
lock, so the control process's loop (which saves inline: a save is a single short transaction) and
the admin API's threads (which read and render reports off the loop) share it safely. A forked child
opens its own rather than use its parent's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

DATABASE: Final = "incidents.sqlite3"
SCHEMA_VERSION: Final = 1
BUSY_TIMEOUT_MS: Final = 5000
DAY: Final = 86_400.0
LEGACY_DIR: Final = "incidents"
_LEGACY_FILE: Final = re.compile(r"([A-Za-z0-9][A-Za-z0-9_-]{0,99})\.json")
_LEGACY_FACTS: Final = ".facts.json"
_SHARED_MAX: Final = 4  # state directories with an open connection per process (tests use many)

_SCHEMA: Final = (
    """CREATE TABLE incidents (
        id TEXT PRIMARY KEY,
        opened REAL NOT NULL,
        closed REAL,
        peak_mode TEXT NOT NULL,
        peak_rps REAL NOT NULL,
        document TEXT NOT NULL,
        facts TEXT,
        updated REAL NOT NULL
    )""",
    "CREATE INDEX incidents_by_opened ON incidents (opened DESC, id DESC)",
)
_INSERT: Final = """
INSERT INTO incidents (id, opened, closed, peak_mode, peak_rps, document, facts, updated)
VALUES (:id, :opened, :closed, :peak_mode, :peak_rps, :document, :facts, :updated)
"""
_UPSERT: Final = (
    _INSERT
    + """ON CONFLICT (id) DO UPDATE SET
    opened = excluded.opened, closed = excluded.closed, peak_mode = excluded.peak_mode,
    peak_rps = excluded.peak_rps, document = excluded.document,
    facts = COALESCE(excluded.facts, incidents.facts), updated = excluded.updated
"""
)
_NEWEST_FIRST: Final = "ORDER BY opened DESC, id DESC"
_LISTING: Final = f"SELECT id, opened, closed, peak_mode, peak_rps, updated FROM incidents {_NEWEST_FIRST}"
_RECORD: Final = "SELECT id, opened, closed, peak_mode, peak_rps, document, facts FROM incidents WHERE id = ?"
_PRUNE_OLD: Final = "DELETE FROM incidents WHERE COALESCE(closed, updated) < ?"
_PRUNE_EXTRA: Final = (
    f"DELETE FROM incidents WHERE id NOT IN (SELECT id FROM incidents {_NEWEST_FIRST} LIMIT ?)"
)

log = logging.getLogger("shieldwall.state")


class IncidentStoreError(Exception):
    """The incidents database cannot be opened, read or written (damaged, locked, from a newer
    shieldwall, or a row that does not parse); the message names the file and says what to do."""


@dataclass(frozen=True, slots=True)
class Listing:
    """What a list of incidents shows, read from columns without parsing documents."""

    id: str
    opened: float
    closed: float | None  # None while open (or when the writer stopped before it closed)
    peak_mode: str
    peak_rps: float
    updated: float  # when the writer last saved it


@dataclass(frozen=True, slots=True)
class Record:
    """One incident as stored: its summary columns, its document, and its facts if any were saved."""

    id: str
    opened: float
    closed: float | None
    peak_mode: str
    peak_rps: float
    document: str
    facts: str | None = None


def database_path(state_dir: Path) -> Path:
    return state_dir / DATABASE


class IncidentStore:
    """The incidents database of one state directory, as this process uses it."""

    def __init__(self, state_dir: Path) -> None:
        self.path = database_path(state_dir)
        self._state_dir = state_dir
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._prepared = False  # WAL mode and the schema checked by this connection, for writing
        self._pid = os.getpid()

    def save(self, record: Record, now: float) -> None:
        """Insert or replace the incident `record.id` (keeping its stored facts when `record.facts`
        is None); `now` (wall clock) is when it was saved."""
        with self._guarded():
            db = self._writer()
            with _transaction(db):
                db.execute(_UPSERT, {**_fields(record), "updated": now})

    def get(self, incident_id: str) -> Record | None:
        """The incident `incident_id`, or None when there is no such incident (or no database)."""
        with self._guarded():
            db = self._reader()
            row = None if db is None else db.execute(_RECORD, (incident_id,)).fetchone()
        return None if row is None else Record(*row)

    def listings(self, limit: int | None = None) -> list[Listing]:
        """The incidents, newest (last opened) first; at most `limit`."""
        query, args = (_LISTING, ()) if limit is None else (f"{_LISTING} LIMIT ?", (limit,))
        with self._guarded():
            db = self._reader()
            rows = [] if db is None else db.execute(query, args).fetchall()
        return [Listing(*row) for row in rows]

    def prune(self, now: float, keep_days: float, keep_max: int) -> int:
        """Bounded retention: delete the incidents that ended (or, never closed, were last saved)
        more than `keep_days` before `now`, then all but the `keep_max` newest. The open incident is
        the newest and is saved every few seconds, so it stays. Returns how many went. The file
        does not shrink, but the pages freed are reused by later saves."""
        with self._guarded():
            db = self._writer()
            with _transaction(db):
                old = db.execute(_PRUNE_OLD, (now - keep_days * DAY,))
                extra = db.execute(_PRUNE_EXTRA, (keep_max,))
                return old.rowcount + extra.rowcount

    def close(self) -> None:
        """Close the connection (a later call opens it again); the last close checkpoints the WAL."""
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._connection is not None and self._pid == os.getpid():
            self._connection.close()
        self._connection, self._prepared = None, False

    @contextlib.contextmanager
    def _guarded(self) -> Iterator[None]:
        """One call's use of the connection: under the lock, SQLite's and the OS's errors explained."""
        with self._lock:
            try:
                yield
            except sqlite3.Error as exc:
                raise IncidentStoreError(self._explain(exc)) from None
            except OSError as exc:
                raise IncidentStoreError(f"cannot use {self.path}: {exc.strerror or exc}") from None

    def _writer(self) -> sqlite3.Connection:
        db = self._current()
        if db is None:
            _create_private(self._state_dir, self.path)
            db = self._open()
        if not self._prepared:
            self._prepare(db)
            self._prepared = True
        return db

    def _reader(self) -> sqlite3.Connection | None:
        """The connection, or None while there is no database (or its schema is not made yet): a
        reader never creates the file, which as another user would be one the writer cannot open."""
        db = self._current()
        if db is None:
            if not self.path.is_file():
                return None
            db = self._open()
        if self._prepared or self._version(db) != 0:
            return db
        self._drop()
        return None

    def _current(self) -> sqlite3.Connection | None:
        if self._pid != os.getpid():  # forked: the parent's connection is not ours to use
            self._connection, self._prepared, self._pid = None, False, os.getpid()
        return self._connection

    def _open(self) -> sqlite3.Connection:
        """A connection to the existing file (mode=rw: SQLite must not create it)."""
        uri = f"{self.path.resolve().as_uri()}?mode=rw"
        db = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        try:
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        except BaseException:
            db.close()
            raise
        self._connection = db
        return db

    def _prepare(self, db: sqlite3.Connection) -> None:
        """WAL mode, and the schema: made (importing the legacy files) in a new database, checked in
        an existing one."""
        (mode,) = db.execute("PRAGMA journal_mode = WAL").fetchone()
        if mode != "wal":
            raise IncidentStoreError(
                f"{self.path}: SQLite cannot use WAL mode here (the journal stays {mode}); "
                "put server.state_dir on a local filesystem"
            )
        db.execute("PRAGMA synchronous = NORMAL")
        with _transaction(db):
            if self._version(db) == 0:
                for statement in _SCHEMA:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
                self._import_legacy(db)

    def _version(self, db: sqlite3.Connection) -> int:
        (version,) = db.execute("PRAGMA user_version").fetchone()
        if version > SCHEMA_VERSION:
            raise IncidentStoreError(
                f"{self.path} was written by a newer shieldwall (schema {version}; this one knows up to "
                f"{SCHEMA_VERSION}): run that version, or move the file aside to start an empty one"
            )
        return int(version)

    def _import_legacy(self, db: sqlite3.Connection) -> None:
        directory = self._state_dir / LEGACY_DIR
        try:
            paths = sorted(directory.iterdir())
        except OSError:
            return
        imported = 0
        for path in paths:
            match = _LEGACY_FILE.fullmatch(path.name)
            if match is None or path.name.endswith(_LEGACY_FACTS):
                continue
            try:
                record = _legacy_record(path, match[1])
                db.execute(_INSERT, {**_fields(record), "updated": path.stat().st_mtime})
            except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
                log.warning("incident not imported: %s: %s: %s", path, type(exc).__name__, exc)
                continue
            imported += 1
        if imported:
            log.info(
                "imported %d incidents from %s into %s; those files are no longer read",
                imported,
                directory,
                self.path,
            )

    def _explain(self, exc: sqlite3.Error) -> str:
        text = str(exc)
        if "locked" in text or "busy" in text:
            hint = f"another process held it longer than {BUSY_TIMEOUT_MS / 1000:g} s; try again"
        elif "not a database" in text or "malformed" in text:
            hint = (
                "the file is damaged: move it aside (shieldwall starts an empty one) and keep it to analyse"
            )
        else:
            hint = "check the file, its directory and their owner"
        return f"{self.path}: {text} ({hint})"


def _fields(record: Record) -> dict[str, object]:
    return {
        "id": record.id,
        "opened": record.opened,
        "closed": record.closed,
        "peak_mode": record.peak_mode,
        "peak_rps": record.peak_rps,
        "document": record.document,
        "facts": record.facts,
    }


def _legacy_record(path: Path, incident_id: str) -> Record:
    """An earlier build's incident file (and its facts file beside it, if any) as a row. Only the
    columns a listing needs are read out of the document; it is stored as it is."""
    document = path.read_text(encoding="utf-8")
    summary = json.loads(document)
    if summary["id"] != incident_id:
        raise ValueError(f"it holds incident {summary['id']!r}")
    closed = summary["closed"]
    try:
        facts: str | None = path.with_name(incident_id + _LEGACY_FACTS).read_text(encoding="utf-8")
    except FileNotFoundError:
        facts = None
    return Record(
        id=incident_id,
        opened=float(summary["opened"]),
        closed=None if closed is None else float(closed),
        peak_mode=str(summary["peak_mode"]),
        peak_rps=float(summary["peak_rps"]),
        document=document,
        facts=facts,
    )


def _create_private(state_dir: Path, path: Path) -> None:
    """The state directory (0700 when made here) and an empty database file with mode 0600, made
    before SQLite opens it: SQLite gives its -wal and -shm files the database file's mode."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection) -> Iterator[None]:
    """One write transaction, taking the write lock at once (BEGIN IMMEDIATE) so it never has to be
    upgraded halfway; rolled back on any error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
        db.execute("COMMIT")
    except BaseException:
        db.rollback()
        raise


_shared: OrderedDict[Path, IncidentStore] = OrderedDict()
_shared_lock = threading.Lock()


def shared(state_dir: Path) -> IncidentStore:
    """This process's store for `state_dir`: every caller in a process uses one connection per
    database. The least recently used of more than a few is closed (only tests use many)."""
    key = state_dir.resolve()
    with _shared_lock:
        store = _shared.get(key)
        if store is None:
            store = _shared[key] = IncidentStore(state_dir)
        _shared.move_to_end(key)
        evicted = [_shared.popitem(last=False)[1] for _ in range(len(_shared) - _SHARED_MAX)]
    for old in evicted:
        old.close()
    return store
