"""Route ad-hoc audit SQL to wherever the store can be read right now."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from typing import Any, TypeVar

from clinops.worker_client import call_worker, query_worker, worker_health
from processors.audit_verify import prove, verify
from processors.signing import trusted_public_keys
from streams.settings import Settings
from streams.sinks.audit_store import AuditStore, ChdbStore, QueryResult, ServerStore

T = TypeVar("T")


def run_audit_sql(settings: Settings, sql: str) -> QueryResult:
    """Run read-only SQL against the audit store.

    With CLICKHOUSE_URL set, the server runs it. Otherwise a running worker owns the
    embedded store and runs it through its loopback endpoint. With no worker running,
    this process opens the embedded store itself.
    """
    if settings.clickhouse_url is None and worker_health(settings.worker_port) is not None:
        return query_worker(settings.worker_port, sql)
    return with_store(settings, lambda store: store.query(sql))


def run_verify(settings: Settings) -> dict[str, Any]:
    """Verify every audit chain; return {"ok": bool, "lines": [...]} as the worker does."""
    if settings.clickhouse_url is None and worker_health(settings.worker_port) is not None:
        return call_worker(settings.worker_port, "/audit/verify")

    def run(store: AuditStore) -> dict[str, Any]:
        report = verify(store, trusted_public_keys(settings.keys_dir))
        return {"ok": report.ok, "lines": report.lines()}

    return with_store(settings, run)


def run_prove(settings: Settings, event_id: str) -> dict[str, Any]:
    if settings.clickhouse_url is None and worker_health(settings.worker_port) is not None:
        return call_worker(settings.worker_port, "/audit/prove?event_id=" + urllib.parse.quote(event_id))
    return with_store(settings, lambda store: prove(store, event_id))


def with_store(settings: Settings, action: Callable[[AuditStore], T]) -> T:
    """Open the server store or the embedded one, run ``action``, and close it."""
    if settings.clickhouse_url is not None:
        store: AuditStore = ServerStore(settings.clickhouse_url.get_secret_value())
    else:
        store = ChdbStore(settings.store_dir)
    try:
        return action(store)
    finally:
        store.close()
