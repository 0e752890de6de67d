"""Route ad-hoc audit SQL to wherever the store can be read right now."""

from __future__ import annotations

from clinops.worker_client import query_worker, worker_health
from streams.settings import Settings
from streams.sinks.audit_store import ChdbStore, QueryResult, ServerStore


def run_audit_sql(settings: Settings, sql: str) -> QueryResult:
    """Run read-only SQL against the audit store.

    With CLICKHOUSE_URL set, the server runs it. Otherwise a running worker owns the
    embedded store and runs it through its loopback endpoint; with no worker running,
    this process opens the embedded store itself.
    """
    if settings.clickhouse_url is not None:
        store = ServerStore(settings.clickhouse_url.get_secret_value())
    elif worker_health(settings.worker_port) is not None:
        return query_worker(settings.worker_port, sql)
    else:
        store = ChdbStore(settings.store_dir)
    try:
        return store.query(sql)
    finally:
        store.close()
