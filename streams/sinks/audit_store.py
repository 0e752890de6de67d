"""The audit store: one interface over embedded chDB and a ClickHouse server.

Embedded mode keeps the data in a local folder. A chDB folder can be opened by one
process at a time, so in embedded mode the worker owns the store and other processes
query it through the worker's SQL endpoint.
"""

from __future__ import annotations

import json
import logging
import threading
import uuid
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from schemas.errors import ClinopsError
from streams.sinks.sql_guard import read_only_query

log = logging.getLogger(__name__)

DDL_FILE = Path(__file__).resolve().parents[2] / "infra" / "clickhouse" / "audit.sql"
AUDIT_TABLE = "audit.audit_events"
CHECKPOINT_TABLE = "audit.checkpoints"


class StoreError(ClinopsError):
    """The audit store could not be opened, written or queried."""


@dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[list[Any]]

    def to_json(self) -> dict[str, Any]:
        return {"columns": self.columns, "rows": self.rows}


def ddl_statements() -> list[str]:
    text = DDL_FILE.read_text()
    statements = []
    for chunk in text.split("\n;"):
        lines = [line for line in chunk.splitlines() if line.strip() and not line.strip().startswith("--")]
        if lines:
            statements.append("\n".join(lines))
    return statements


def _clickhouse_time(value: datetime) -> str:
    return value.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")


def _json_value(value: Any) -> Any:
    """Encode the values JSON lacks: times, UUIDs and bytes."""
    if isinstance(value, datetime):
        return _clickhouse_time(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    raise TypeError(f"cannot store a {type(value).__name__} in ClickHouse")


class AuditStore(ABC):
    def insert_rows(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Insert rows in one statement, which ClickHouse applies atomically when they
        fall into one partition; raises StoreError.

        Both backends receive the same JSONCompactEachRow text, so a time may be a
        datetime or ClickHouse's "seconds.fraction" string.
        """
        if not rows:
            return
        encode = json.JSONEncoder(separators=(",", ":"), default=_json_value).encode
        self._insert_text(table, columns, "\n".join(encode(row) for row in rows))

    @abstractmethod
    def _insert_text(self, table: str, columns: Sequence[str], text: str) -> None:
        """Insert JSONCompactEachRow text."""

    @abstractmethod
    def binary(self, sql: str) -> bytes:
        """Run trusted SQL and return its result in ClickHouse's RowBinary format."""

    @abstractmethod
    def execute(self, sql: str) -> QueryResult:
        """Run trusted SQL from this project (no read-only guard)."""

    def query(self, sql: str) -> QueryResult:
        """Run a user's read-only SQL; raises ReadOnlyQueryError or StoreError."""
        try:
            return self.execute(read_only_query(sql))
        except StoreError as exc:
            raise StoreError(f"{exc}\n(The store ran your query with 'SETTINGS readonly = 1' appended.)") from exc

    def close(self) -> None:
        """Release the store's resources."""


class ChdbStore(AuditStore):
    """The audit store in an embedded chDB folder."""

    def __init__(self, path: Path) -> None:
        from chdb import session  # imported late: chDB loads a large native library

        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        try:
            self._session = session.Session(str(path))
        except Exception as exc:  # chDB raises bare RuntimeError subclasses
            raise StoreError(
                f"cannot open the embedded audit store at {path}: {exc}. "
                "Another process (a running `clinops worker`?) may hold it; query through it instead."
            ) from exc
        for statement in ddl_statements():
            self.execute(statement)
        self.execute("USE audit")
        check_schema(self, path)

    def _insert_text(self, table: str, columns: Sequence[str], text: str) -> None:
        self._run(f"INSERT INTO {table} ({', '.join(columns)}) FORMAT JSONCompactEachRow\n" + text, None)

    def binary(self, sql: str) -> bytes:
        return self._run(sql, "RowBinary")

    def execute(self, sql: str) -> QueryResult:
        raw = self._run(sql, "JSONCompact")
        if not raw:
            return QueryResult([], [])
        parsed = json.loads(raw)
        return QueryResult([column["name"] for column in parsed["meta"]], parsed["data"])

    def _run(self, sql: str, output_format: str | None) -> bytes:
        with self._lock:
            try:
                result = self._session.query(sql, output_format or "CSV")
            except Exception as exc:  # chDB raises RuntimeError with the server message
                raise StoreError(f"embedded ClickHouse rejected the query: {exc}") from exc
        return result.bytes() if output_format else b""

    def close(self) -> None:
        with self._lock:
            self._session.close()


class ServerStore(AuditStore):
    """The audit store on a ClickHouse server, written with clickhouse-connect."""

    def __init__(self, url: str) -> None:
        # The URL names the database (such as http://writer:secret@host:8123/audit), so
        # unqualified table names in users' SQL resolve as they do in embedded mode.
        import clickhouse_connect
        from clickhouse_connect.driver.exceptions import ClickHouseError

        self._errors = (ClickHouseError, OSError)
        try:
            self._client = clickhouse_connect.get_client(dsn=url)
        except self._errors as exc:
            raise StoreError(f"cannot connect to the ClickHouse server in CLICKHOUSE_URL: {exc}") from exc
        for statement in ddl_statements():
            try:
                self._client.command(statement)
            except self._errors as exc:
                # A writer account may lack CREATE; the DDL in infra/clickhouse is then
                # applied by an administrator, and the inserts below show whether it was.
                log.warning("could not apply the audit DDL on the server (%s); assuming it exists", exc)

    def _insert_text(self, table: str, columns: Sequence[str], text: str) -> None:
        try:
            self._client.raw_insert(table, list(columns), text.encode(), fmt="JSONCompactEachRow")
        except self._errors as exc:
            raise StoreError(f"insert into {table} failed: {exc}") from exc

    def binary(self, sql: str) -> bytes:
        try:
            return self._client.raw_query(sql, fmt="RowBinary")
        except self._errors as exc:
            raise StoreError(f"ClickHouse server rejected the query: {exc}") from exc

    def execute(self, sql: str) -> QueryResult:
        try:
            result = self._client.query(sql)
        except self._errors as exc:
            raise StoreError(f"ClickHouse server rejected the query: {exc}") from exc
        return QueryResult(list(result.column_names), [list(row) for row in result.result_rows])

    def close(self) -> None:
        self._client.close()


def check_schema(store: AuditStore, location: object) -> None:
    """Raise StoreError when the store's audit table predates the hash chain."""
    found = store.execute(
        "SELECT count() FROM system.columns WHERE database = 'audit' AND table = 'audit_events' AND name = 'seq'"
    )
    if int(found.rows[0][0]) == 0:
        raise StoreError(
            f"the audit store at {location} was created before the hash chain and lacks its columns; "
            "move it aside (or delete it) and start again"
        )


DEFAULT_RETENTION_YEARS = 10  # the TTL written in audit.sql


def open_store(clickhouse_url: str | None, embedded_path: Path, retention_years: int = DEFAULT_RETENTION_YEARS) -> AuditStore:
    """Open the server store when a URL is given, else the embedded one, and apply the
    audit retention when it differs from the DDL's default."""
    store: AuditStore = ServerStore(clickhouse_url) if clickhouse_url else ChdbStore(embedded_path)
    if retention_years != DEFAULT_RETENTION_YEARS:
        if retention_years < 1:
            raise StoreError(f"audit retention must be at least 1 year, got {retention_years}")
        ttl = f"ALTER TABLE {AUDIT_TABLE} MODIFY TTL toDateTime(recorded_at) + INTERVAL {int(retention_years)} YEAR"
        try:
            store.execute(ttl)
        except StoreError as exc:
            if not clickhouse_url:
                raise
            # The server's writer account may not alter tables; an administrator must.
            log.warning("could not set the audit retention on the server (%s); run as an administrator: %s", exc, ttl)
    return store
