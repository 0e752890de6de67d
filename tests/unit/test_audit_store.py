"""The embedded audit store (real chDB), the read-only guard and the audit sink."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from processors.audit_sink import AuditSink
from processors.messages import Input
from streams.records import audit_event
from streams.sinks.audit_store import ChdbStore
from streams.sinks.sql_guard import ReadOnlyQueryError, read_only_query


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ChdbStore:
    # chDB allows one store folder per process, so the module shares one.
    return ChdbStore(tmp_path_factory.mktemp("audit-store"))


def make_event(action: str, input_bytes: bytes, subject: str = "p-1"):
    return audit_event(actor="test", action=action, subject_type="patient", subject_id=subject,
                       input_bytes=input_bytes, occurred_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
                       details={"n": 1})


def test_insert_and_query(store: ChdbStore) -> None:
    store.insert_audit([make_event("store.test", b"a"), make_event("store.test", b"b")])
    result = store.query("SELECT count(), any(details) FROM audit_events WHERE action = 'store.test'")
    assert result.columns == ["count()", "any(details)"]
    assert int(result.rows[0][0]) == 2
    assert result.rows[0][1] == '{"n":1}'


def test_times_are_utc(store: ChdbStore) -> None:
    store.insert_audit([make_event("store.utc", b"u")])
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


def test_sink_skips_redelivered_events(store: ChdbStore) -> None:
    sink = AuditSink(store)
    event = make_event("sink.dedup", b"same input")
    message = Input("audit.events", 0, 1, None, event.to_avro())
    sink.handle_batch([message, message])
    sink.handle_batch([message])
    (row,) = store.query("SELECT count() FROM audit_events WHERE action = 'sink.dedup'").rows
    assert int(row[0]) == 1
    assert sink.written == 1


def test_sink_records_undecodable_message(store: ChdbStore) -> None:
    sink = AuditSink(store)
    outputs = sink.handle_batch([Input("audit.events", 1, 77, None, b"\x00broken")])
    assert [o.topic.name for o in outputs] == ["dead.letters"]
    (row,) = store.query("SELECT count() FROM audit_events WHERE action = 'input.rejected' AND subject_id = 'audit.events/1/77'").rows
    assert int(row[0]) == 1
