"""The scorer's patient state survives a worker restart through its Faust changelog."""

from __future__ import annotations

import json
import os
import uuid
from datetime import timedelta
from pathlib import Path

import pytest

from clinops.worker_client import WorkerQueryError, call_worker, worker_health
from clinops.worker_process import start_worker, stop_worker
from schemas.models import PseudonymizedVitals
from streams.producer import EventProducer
from processors.risk_model import MODEL_SPECS
from streams.settings import PROJECT_ROOT, Settings
from streams.sources.physionet import list_stays
from streams.sources.replay import load_stays
from streams.topics import VITALS_PSEUDONYMIZED, create_topics
from tests.conftest import SAMPLE_DIR
from tests.integration.conftest import REPLAY_START, TEST_WORKER_PORT
from tests.integration.helpers import wait_for

pytestmark = pytest.mark.integration

RESTARTED_PORT = TEST_WORKER_PORT + 2
UNINTERRUPTED_PORT = TEST_WORKER_PORT + 3
HOURS = 30


def stay_vitals(pseudonym: str) -> list[PseudonymizedVitals]:
    """The first HOURS rows of a bundled stay, as pseudonymized vitals of one patient."""
    stay = next(s for s in load_stays(list_stays(SAMPLE_DIR, 10)) if len(s.rows) >= HOURS)
    return [
        PseudonymizedVitals(event_id=uuid.uuid4(), source="restart-test", pseudonym=pseudonym, key_id="k-test",
                            ward="MICU", observed_at=REPLAY_START + timedelta(hours=row.icu_hour), **row.vitals)
        for row in stay.rows[:HOURS]
    ]


def scorer_env(bootstrap_servers: str, data_dir: Path, port: int, app_id: str) -> dict[str, str]:
    return {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers, "CLINOPS_DATA_DIR": str(data_dir),
            "CLINOPS_WORKER_PORT": str(port), "CLINOPS_APP_ID": app_id}


def features_once_at(port: int, pseudonym: str, latest_at: str) -> dict:
    """Wait until the worker has scored the patient up to ``latest_at``; return its features."""
    def read() -> dict | None:
        try:
            return call_worker(port, f"/scorer/features?pseudonym={pseudonym}")
        except WorkerQueryError:
            return None

    document = wait_for(read, lambda found: found is not None and found["latest_at"] == latest_at)
    assert document is not None and document["latest_at"] == latest_at, f"the worker on {port} did not reach {latest_at}"
    return document["features"]


def model_labels(port: int) -> int:
    health = worker_health(port)
    assert health is not None, f"no worker responds on {port}"
    return int(health["model"]["learned"])


def test_features_after_restart_equal_uninterrupted(bootstrap_servers: str, tmp_path: Path) -> None:
    pseudonym = f"p-restart-{uuid.uuid4().hex[:12]}"
    events = stay_vitals(pseudonym)
    half = HOURS // 2
    create_topics(bootstrap_servers)
    producer = EventProducer(bootstrap_servers)

    # First half, then a clean stop of the worker.
    restarted_app = f"clinops-restart-{uuid.uuid4().hex[:8]}"
    env = scorer_env(bootstrap_servers, tmp_path / "restarted", RESTARTED_PORT, restarted_app)
    for event in events[:half]:
        producer.send(VITALS_PSEUDONYMIZED, pseudonym, event)
    producer.flush()
    assert producer.failed == 0
    worker = start_worker(env, RESTARTED_PORT, tmp_path / "restarted.log", "--stages", "scorer", cwd=PROJECT_ROOT)
    try:
        before = features_once_at(RESTARTED_PORT, pseudonym, events[half - 1].observed_at.isoformat())
        assert before["hours_in_unit"] == half - 1
        assert wait_for(lambda: model_labels(RESTARTED_PORT), lambda count: count > 0) > 0
    finally:
        stop_worker(worker)
    # The worker saved its model when it stopped.
    (sidecar,) = (tmp_path / "restarted" / "models").glob(f"{MODEL_SPECS[Settings().model].version}.json")
    saved = json.loads(sidecar.read_text())["learned"]
    assert saved > 0

    # A new process of the same application recovers the state and the model, then gets
    # the second half.
    worker = start_worker(env, RESTARTED_PORT, tmp_path / "restarted.log", "--stages", "scorer", cwd=PROJECT_ROOT)
    try:
        # Right after start, before it has consumed anything, a worker with an untrained
        # model would report 0 labels.
        assert model_labels(RESTARTED_PORT) >= saved
        for event in events[half:]:
            producer.send(VITALS_PSEUDONYMIZED, pseudonym, event)
        producer.flush()
        after_restart = features_once_at(RESTARTED_PORT, pseudonym, events[-1].observed_at.isoformat())
    finally:
        stop_worker(worker)

    # The same events to a worker that never stopped.
    env = scorer_env(bootstrap_servers, tmp_path / "uninterrupted", UNINTERRUPTED_PORT, f"clinops-once-{uuid.uuid4().hex[:8]}")
    worker = start_worker(env, UNINTERRUPTED_PORT, tmp_path / "uninterrupted.log", "--stages", "scorer", cwd=PROJECT_ROOT)
    try:
        uninterrupted = features_once_at(UNINTERRUPTED_PORT, pseudonym, events[-1].observed_at.isoformat())
    finally:
        stop_worker(worker)

    assert after_restart["hours_in_unit"] == HOURS - 1
    assert after_restart == uninterrupted
