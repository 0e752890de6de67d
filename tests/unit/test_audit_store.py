"""The embedded audit store (real chDB), the read-only guard and the audit sink."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from streams.records import audit_event
from streams.sinks.audit_store import ChdbStore, StoreError
from streams.sinks.sql_guard import ReadOnlyQueryError, read_only_query


@pytest.fixture
def store(chdb_store: ChdbStore) -> ChdbStore:
    return chdb_store


def make_event(action: str, input_bytes: bytes, subject: str = "p-1"):
    return audit_event(actor="test", action=action, subject_type="patient", subject_id=subject,
                       input_bytes=input_bytes, occurred_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
                       details={"n": 1})


def insert(store: ChdbStore, *events) -> None:
    columns = ("event_id", "occurred_at", "emitted_at", "recorded_at", "actor", "action", "subject_type",
               "subject_id", "input_sha256", "details", "chain", "seq", "source_offset", "hash")
    rows = [[e.event_id, e.occurred_at, e.emitted_at, e.emitted_at, e.actor, e.action, e.subject_type,
             e.subject_id, e.input_sha256, e.details, 999, i, i, "0" * 64] for i, e in enumerate(events)]
    store.insert_rows("audit.audit_events", columns, rows)


def test_insert_and_query(store: ChdbStore) -> None:
    insert(store, make_event("store.test", b"a"), make_event("store.test", b"b"))
    result = store.query("SELECT count(), any(details) FROM audit_events WHERE action = 'store.test'")
    assert result.columns == ["count()", "any(details)"]
    assert int(result.rows[0][0]) == 2
    assert result.rows[0][1] == '{"n":1}'


def test_times_are_utc(store: ChdbStore) -> None:
    insert(store, make_event("store.utc", b"u"))
    (row,) = store.query("SELECT toString(occurred_at) FROM audit_events WHERE action = 'store.utc'").rows
    assert row[0] == "2026-01-01 00:00:00.000000"


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("DROP TABLE audit_events", "only reading statements"),
        ("INSERT INTO audit_events (action) VALUES ('x')", "only reading statements"),
        ("SELECT 1; DROP TABLE audit_events", "one statement"),
        ("SELECT 1 SETTINGS readonly = 0", "SETTINGS or FORMAT"),
        ("", "empty"),
    ],
)
def test_guard_rejects_writes(sql: str, message: str) -> None:
    with pytest.raises(ReadOnlyQueryError, match=message):
        read_only_query(sql)


def test_guard_allows_semicolon_in_string() -> None:
    assert read_only_query("SELECT 'a;b'").startswith("SELECT 'a;b'")


def test_read_only_setting_blocks_table_functions(store: ChdbStore, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read")
    with pytest.raises(Exception, match="readonly"):
        store.query(f"SELECT * FROM file('{secret}', 'LineAsString')")


def test_retention_is_configurable(store: ChdbStore) -> None:
    from streams.sinks.audit_store import open_store

    # chDB reuses the process's one store folder, so this reopens the shared store.
    reopened = open_store(None, store.path, retention_years=7)
    (ddl,) = reopened.execute("SELECT create_table_query FROM system.tables WHERE database = 'audit' AND name = 'audit_events'").rows[0]
    assert "toIntervalYear(7)" in ddl or "INTERVAL 7 YEAR" in ddl
    reopened.execute("ALTER TABLE audit.audit_events MODIFY TTL toDateTime(recorded_at) + INTERVAL 10 YEAR")
    with pytest.raises(StoreError, match="at least 1 year"):
        open_store(None, store.path, retention_years=0)
