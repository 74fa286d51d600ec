"""The incidents database (state/incident_store.py): rows round-trip and upsert, list newest first,
retention by age and by count (an explicit `now`, checked against a model with hypothesis), WAL mode,
a reader in another process sees what the writer committed, readers never create the file, a newer
schema or a damaged or locked file is refused with a message, legacy JSON files are imported once,
and the files are private."""

from __future__ import annotations

import logging
import os
import sqlite3
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from report_sample import detector_incident, sample_facts

from shieldwall.report import store
from shieldwall.report.facts import ReportFacts
from shieldwall.state import incident_store
from shieldwall.state.incident_store import DAY, IncidentStore, IncidentStoreError, Record

NOW = 1_700_000_000.0


def record(
    incident_id: str,
    opened: float,
    closed: float | None = None,
    *,
    document: str | None = None,
    facts: str | None = None,
) -> Record:
    return Record(
        id=incident_id,
        opened=opened,
        closed=closed,
        peak_mode="under_attack",
        peak_rps=1234.5,
        document=document or f'{{"id": "{incident_id}"}}',
        facts=facts,
    )


@pytest.fixture
def writer(tmp_path: Path) -> Iterator[IncidentStore]:
    db = IncidentStore(tmp_path / "state")
    yield db
    db.close()


def test_a_record_round_trips_with_its_summary_columns(writer: IncidentStore) -> None:
    saved = record("INC-1", NOW - 60, NOW, facts='{"f": 1}')
    writer.save(saved, NOW + 1)
    assert writer.get("INC-1") == saved
    assert writer.get("INC-2") is None
    (listing,) = writer.listings()
    assert (listing.id, listing.opened, listing.closed, listing.peak_mode, listing.peak_rps) == (
        "INC-1",
        NOW - 60,
        NOW,
        "under_attack",
        1234.5,
    )
    assert listing.updated == NOW + 1


def test_saving_an_open_incident_then_its_close_keeps_one_row_and_the_facts(writer: IncidentStore) -> None:
    writer.save(record("INC-1", NOW, document='{"v": 1}', facts='{"facts": "early"}'), NOW)
    writer.save(record("INC-1", NOW, document='{"v": 2}'), NOW + 10)  # no facts this time: kept
    assert writer.get("INC-1") == record("INC-1", NOW, document='{"v": 2}', facts='{"facts": "early"}')
    writer.save(record("INC-1", NOW, NOW + 90, document='{"v": 3}', facts='{"facts": "late"}'), NOW + 90)
    assert writer.get("INC-1") == record(
        "INC-1", NOW, NOW + 90, document='{"v": 3}', facts='{"facts": "late"}'
    )
    assert [(x.id, x.closed, x.updated) for x in writer.listings()] == [("INC-1", NOW + 90, NOW + 90)]


def test_listings_are_newest_first_and_limited(writer: IncidentStore) -> None:
    for n, opened in enumerate([NOW - 50, NOW, NOW - 100, NOW]):
        writer.save(record(f"INC-{n}", opened), NOW)
    assert [x.id for x in writer.listings()] == ["INC-3", "INC-1", "INC-0", "INC-2"]  # a tie: by id
    assert [x.id for x in writer.listings(2)] == ["INC-3", "INC-1"]


def test_retention_by_age_counts_from_the_end_or_the_last_save(writer: IncidentStore) -> None:
    writer.save(record("INC-ended-long-ago", NOW - 40 * DAY, NOW - 31 * DAY), NOW - 31 * DAY)
    writer.save(record("INC-ended-recently", NOW - 40 * DAY, NOW - 29 * DAY), NOW - 29 * DAY)
    writer.save(record("INC-never-closed", NOW - 40 * DAY), NOW - 31 * DAY)  # its writer died
    writer.save(record("INC-open", NOW - 40 * DAY), NOW)  # open for 40 days, saved a second ago
    assert writer.prune(NOW, keep_days=30, keep_max=1000) == 2
    assert {x.id for x in writer.listings()} == {"INC-ended-recently", "INC-open"}
    assert writer.prune(NOW, keep_days=30, keep_max=1000) == 0


def test_retention_by_count_keeps_the_newest(writer: IncidentStore) -> None:
    for n in range(5):
        writer.save(record(f"INC-{n}", NOW + n, NOW + n + 1), NOW)
    assert writer.prune(NOW, keep_days=365, keep_max=2) == 3
    assert [x.id for x in writer.listings()] == ["INC-4", "INC-3"]


rows = st.lists(
    st.tuples(
        st.integers(0, 100),  # opened, in days
        st.none() | st.integers(0, 100),  # closed, days after opening
        st.integers(0, 100),  # last saved, days after opening
    ),
    max_size=12,
)


@settings(max_examples=40, deadline=None)
@given(rows=rows, keep_days=st.integers(1, 150), keep_max=st.integers(1, 12))
def test_prune_keeps_exactly_what_the_rule_says(
    rows: list[tuple[int, int | None, int]], keep_days: int, keep_max: int
) -> None:
    now = 200 * DAY
    expected = []
    with tempfile.TemporaryDirectory() as directory:
        db = IncidentStore(Path(directory))
        try:
            for n, (opened, closed, saved) in enumerate(rows):
                end = None if closed is None else (opened + closed) * DAY
                db.save(record(f"INC-{n:02}", opened * DAY, end), (opened + saved) * DAY)
                last = end if end is not None else (opened + saved) * DAY
                if last >= now - keep_days * DAY:
                    expected.append((opened * DAY, f"INC-{n:02}"))
            kept = [incident_id for _, incident_id in sorted(expected, reverse=True)[:keep_max]]
            assert db.prune(now, keep_days, keep_max) == len(rows) - len(kept)
            assert [x.id for x in db.listings()] == kept
        finally:
            db.close()


def test_the_database_is_in_wal_mode_with_a_schema_version(writer: IncidentStore) -> None:
    writer.save(record("INC-1", NOW), NOW)
    other = sqlite3.connect(writer.path)
    try:
        assert other.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert other.execute("PRAGMA user_version").fetchone() == (incident_store.SCHEMA_VERSION,)
    finally:
        other.close()


def test_a_reader_sees_each_commit_of_the_writer(writer: IncidentStore, tmp_path: Path) -> None:
    reader = IncidentStore(tmp_path / "state")
    try:
        assert reader.listings() == []  # no database yet: nothing, and nothing created
        assert not writer.path.exists() and not writer.path.parent.exists()
        writer.save(record("INC-1", NOW), NOW)
        assert [x.id for x in reader.listings()] == ["INC-1"]
        writer.save(record("INC-1", NOW, NOW + 5), NOW + 5)  # the reader's connection is open now
        reader_record = reader.get("INC-1")
        assert reader_record is not None and reader_record.closed == NOW + 5
    finally:
        reader.close()
    code = (
        "import sys; from pathlib import Path; from shieldwall.state.incident_store import IncidentStore\n"
        "found = IncidentStore(Path(sys.argv[1])).get('INC-1')\n"
        "print(found.closed if found else 'missing')"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "state")],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    assert done.stdout.strip() == str(NOW + 5)  # the writer's connection is still open: WAL


def test_a_database_from_a_newer_shieldwall_is_refused(writer: IncidentStore, tmp_path: Path) -> None:
    writer.save(record("INC-1", NOW), NOW)
    writer.close()
    raw = sqlite3.connect(writer.path)
    raw.execute(f"PRAGMA user_version = {incident_store.SCHEMA_VERSION + 1}")
    raw.close()
    for use in (
        lambda db: db.get("INC-1"),
        lambda db: db.listings(),
        lambda db: db.save(record("INC-2", NOW), NOW),
    ):
        db = IncidentStore(tmp_path / "state")
        with pytest.raises(
            IncidentStoreError, match=r"written by a newer shieldwall \(schema 2; .* up to 1\)"
        ):
            use(db)
        db.close()


def test_a_damaged_database_is_refused_with_what_to_do(tmp_path: Path) -> None:
    path = incident_store.database_path(tmp_path)
    path.write_bytes(b"this is not SQLite at all, just bytes " * 200)
    for use in (lambda db: db.get("INC-1"), lambda db: db.save(record("INC-1", NOW), NOW)):
        db = IncidentStore(tmp_path)
        with pytest.raises(IncidentStoreError) as caught:
            use(db)
        db.close()
        assert str(caught.value).startswith(f"{path}: file is not a database")
        assert "damaged: move it aside" in str(caught.value)


def test_a_locked_database_is_an_error_after_the_busy_timeout(
    writer: IncidentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer.save(record("INC-1", NOW), NOW)
    writer.close()
    monkeypatch.setattr(incident_store, "BUSY_TIMEOUT_MS", 20)
    holder = sqlite3.connect(writer.path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        with pytest.raises(IncidentStoreError, match=r"database is locked \(another process held it"):
            writer.save(record("INC-2", NOW), NOW)
    finally:
        holder.close()
    writer.save(record("INC-2", NOW), NOW)  # once it is free, the same store writes
    assert [x.id for x in writer.listings()] == ["INC-2", "INC-1"]


def test_legacy_files_are_imported_once_and_left_in_place(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    incident = detector_incident()
    facts = sample_facts(incident)
    older = detector_incident(attack_seconds=60)
    older.id, older.opened = "INC-20200101-000000", 1_577_836_800.0
    legacy = tmp_path / "incidents"
    legacy.mkdir()
    (legacy / f"{incident.id}.json").write_text(incident.to_json())
    (legacy / f"{incident.id}.facts.json").write_text(facts.to_json())
    (legacy / f"{older.id}.json").write_text(older.to_json())
    (legacy / "INC-20210101-000000.json").write_text('{"id": "INC-20210101-000000"')  # cut short
    (legacy / ".INC-x.json.abc.tmp").write_text("a temporary file of an interrupted write")
    before = sorted(path.name for path in legacy.iterdir())

    with caplog.at_level(logging.INFO, logger="shieldwall.state"):
        assert incident_store.shared(tmp_path).prune(NOW, keep_days=10_000, keep_max=1000) == 0
    assert [x.id for x in incident_store.shared(tmp_path).listings()] == [incident.id, older.id]
    assert store.load(tmp_path, incident.id) == (incident, facts)
    assert store.load(tmp_path, older.id) == (older, None)
    assert sorted(path.name for path in legacy.iterdir()) == before
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert ("INFO", f"imported 2 incidents from {legacy} into {tmp_path / 'incidents.sqlite3'}; those files "
            "are no longer read") in messages  # fmt: skip
    assert any(
        level == "WARNING" and "INC-20210101-000000.json: JSONDecodeError" in text for level, text in messages
    )

    # once: an incident pruned since is not imported again by the next process
    assert incident_store.shared(tmp_path).prune(NOW, keep_days=10_000, keep_max=1) == 1
    incident_store.shared(tmp_path).close()
    again = IncidentStore(tmp_path)
    try:
        again.save(record("INC-30000101-000000", incident.opened + 1), NOW)
        assert [x.id for x in again.listings()] == ["INC-30000101-000000", incident.id]
    finally:
        again.close()


def test_the_database_and_its_directory_are_private_whatever_the_umask(tmp_path: Path) -> None:
    state_dir = tmp_path / "new" / "state"
    old_umask = os.umask(0)
    db = IncidentStore(state_dir)
    try:
        db.save(record("INC-1", NOW), NOW)
        for path in (
            db.path,
            db.path.with_name(db.path.name + "-wal"),
            db.path.with_name(db.path.name + "-shm"),
        ):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert stat.S_IMODE(state_dir.stat().st_mode) == 0o700
    finally:
        os.umask(old_umask)
        db.close()


def test_store_save_and_load_speak_incidents_and_facts(tmp_path: Path) -> None:
    incident = detector_incident()
    store.save(tmp_path, incident, ReportFacts(organisation="A Council"), now=NOW)
    store.save(tmp_path, incident, now=NOW + 10)  # the facts saved before stay
    assert store.load(tmp_path, incident.id) == (incident, ReportFacts(organisation="A Council"))
    with pytest.raises(store.IncidentNotFound) as missing:
        store.load(tmp_path, "INC-20000101-000000")
    assert missing.value.known == [incident.id]
    assert missing.value.database == tmp_path / "incidents.sqlite3"
    with pytest.raises(ValueError, match="not an incident id"):
        store.load(tmp_path, "../x")
    incident_store.shared(tmp_path).close()


def test_one_shared_store_per_state_dir_and_an_evicted_one_still_works(tmp_path: Path) -> None:
    first = incident_store.shared(tmp_path / "0")
    assert incident_store.shared(tmp_path / "0" / ".." / "0") is first
    first.save(record("INC-1", NOW), NOW)
    others = [incident_store.shared(tmp_path / str(n)) for n in range(1, 6)]  # more than are kept open
    assert incident_store.shared(tmp_path / "0") is not first
    assert [x.id for x in first.listings()] == ["INC-1"]  # closed when evicted, opened again
    for db in [first, *others]:
        db.close()
