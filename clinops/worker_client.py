"""Talk to a running worker's loopback web endpoint (health and audit SQL)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from schemas.errors import ClinopsError
from streams.sinks.audit_store import QueryResult

# Local calls: a worker that does not respond within this is busy or gone. Verifying
# millions of audit rows takes about a minute, so the limit is generous.
TIMEOUT_S = 300.0


class WorkerQueryError(ClinopsError):
    """The worker rejected a query or failed to run it."""


def worker_health(port: int, timeout_s: float = 2.0) -> dict[str, Any] | None:
    """Return the worker's health document, or None when no worker responds on ``port``."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=timeout_s) as response:
            return json.load(response)
    except (urllib.error.URLError, OSError, ValueError):
        return None


def query_worker(port: int, sql: str) -> QueryResult:
    body = call_worker(port, "/audit/sql", {"sql": sql})
    return QueryResult(body["columns"], body["rows"])


def call_worker(port: int, path: str, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    """POST ``payload`` (or GET without one) to the worker; raise WorkerQueryError on failure."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=json.dumps(payload).encode() if payload is not None else None,
        headers={"Content-Type": "application/json"},
        method="POST" if payload is not None else "GET",
    )
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            body = json.load(response)
    except urllib.error.HTTPError as exc:
        try:
            message = json.load(exc).get("error", str(exc))
        except ValueError:
            message = str(exc)
        raise WorkerQueryError(message) from exc
    except (urllib.error.URLError, OSError) as exc:
        raise WorkerQueryError(f"the worker on port {port} did not respond: {exc}") from exc
    return body
