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
