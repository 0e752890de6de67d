"""The live model's artefact on disk, so that a restarted worker keeps what it learned.

The worker pickles its model into ``<data folder>/models/<version>.pkl`` every minute
when it has learned since, and when it stops. A sidecar ``<version>.json`` records the
file's SHA-256 and how many labels the model had learned. The worker also records each
save as a ``model.checkpointed`` audit event. On start the worker loads the artefact
of its configured version only when the file's SHA-256 matches the sidecar.

NOTE: pickle runs code while it loads, so the models folder must be as protected as the
worker's own code. Labels that Kafka redelivers after a crash may be learned twice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from processors.risk_model import RiskModel

log = logging.getLogger(__name__)

T = TypeVar("T")
# Room for trees thousands of levels deep: the pickler uses C stack for each level.
DEEP_RECURSION_LIMIT = 200_000
DEEP_STACK_BYTES = 512 * 1024 * 1024


@dataclass(frozen=True)
class Artefact:
    """A saved model: where, its SHA-256, and how many labels it had learned."""

    path: Path
    sha256: str
    learned: int


def _write_atomically(path: Path, data: bytes) -> None:
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(data)
    os.replace(partial, path)


def _in_deep_thread(work: Callable[[], T]) -> T:
    """Run ``work`` on a thread with a large stack and recursion limit, and wait for it.

    Online trees grow deep: a Mondrian or Hoeffding tree of the full training set
    exceeded the default limit of 1,000 nested objects while being pickled. The
    limit is interpreter-wide, so it is raised only while the caller waits.
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # re-raised on the caller's thread
            outcome["error"] = exc

    previous_limit, previous_stack = sys.getrecursionlimit(), threading.stack_size(DEEP_STACK_BYTES)
    sys.setrecursionlimit(DEEP_RECURSION_LIMIT)
    try:
        thread = threading.Thread(target=run, name="model-pickle")
        thread.start()
        thread.join()
    finally:
        threading.stack_size(previous_stack)
        sys.setrecursionlimit(previous_limit)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def save_model(folder: Path, model: RiskModel) -> Artefact:
    """Pickle ``model`` into ``folder`` with its SHA-256 beside it; return the artefact."""
    folder.mkdir(parents=True, exist_ok=True)
    data = _in_deep_thread(lambda: pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    digest = hashlib.sha256(data).hexdigest()
    path = folder / f"{model.version}.pkl"
    _write_atomically(path, data)
    sidecar = {"version": model.version, "sha256": digest, "learned": model.learned, "positives": model.positives,
               "saved_at": datetime.now(timezone.utc).isoformat()}
    _write_atomically(folder / f"{model.version}.json", json.dumps(sidecar).encode())
    return Artefact(path, digest, model.learned)


def load_model(folder: Path, version: str) -> RiskModel | None:
    """Return the saved model of ``version``, or None when there is none or it fails its check."""
    path, sidecar = folder / f"{version}.pkl", folder / f"{version}.json"
    if not path.exists() or not sidecar.exists():
        return None
    data = path.read_bytes()
    expected = json.loads(sidecar.read_text()).get("sha256")
    if hashlib.sha256(data).hexdigest() != expected:
        log.error("the model artefact %s does not match the SHA-256 in %s; starting an untrained model", path, sidecar)
        return None
    model = _in_deep_thread(lambda: pickle.loads(data))
    if not isinstance(model, RiskModel) or model.version != version:
        log.error("the model artefact %s contains another model; starting an untrained model", path)
        return None
    return model
