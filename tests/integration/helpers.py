"""Small helpers for integration tests: polling, audit SQL and reading topics to the end."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from clinops.worker_client import query_worker
from streams.topic_reader import read_topic  # noqa: F401 - re-exported for the tests

T = TypeVar("T")
# Processing a few thousand events takes seconds here; a minute covers a loaded CI machine.
DEFAULT_TIMEOUT_S = 120.0


def wait_for(read: Callable[[], T], done: Callable[[T], bool], timeout_s: float = DEFAULT_TIMEOUT_S) -> T:
    """Call ``read`` until ``done`` accepts its value; return the last value either way."""
    deadline = time.monotonic() + timeout_s
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.5)
        value = read()
    return value


def audit_rows(port: int, sql: str) -> list[list]:
    return query_worker(port, sql).rows


# ClickHouse parses at most 256 KiB of SQL per query, about 3,000 quoted SHA-256 digests.
IN_LIST_CHUNK = 1000


def count_rows_in(port: int, sql: str, values: list[str]) -> dict[str, int]:
    """Run ``sql`` (two columns, a key and a count, with ``{values}`` in an IN list) over
    ``values`` in chunks small enough to parse, and add up the counts per key."""
    totals: dict[str, int] = {}
    for start in range(0, len(values), IN_LIST_CHUNK):
        chunk = ", ".join(f"'{value}'" for value in values[start:start + IN_LIST_CHUNK])
        for key, count in audit_rows(port, sql.format(values=chunk)):
            totals[key] = totals.get(key, 0) + int(count)
    return totals
