"""A real Kafka broker and a real worker process for integration tests.

The broker is the project's own local KRaft broker, started in a temporary folder on
ports of its own so that a developer's broker on 9092 is left alone. With
KAFKA_BOOTSTRAP_SERVERS set, the tests use that cluster instead.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest

from clinops.worker_process import start_worker, stop_worker
from schemas.errors import ClinopsError
from infra.kafka.launcher import LocalBroker
from schemas.codec import registry
from streams.producer import EventProducer
from streams.settings import PROJECT_ROOT, Settings
from streams.sources.physionet import Stay, list_stays
from processors.vault import open_vault
from streams.sources.replay import load_stays, merged_events, replay, replayed_monitors
from streams.topics import BEDSIDE_VITALS, create_topics
from tests.conftest import SAMPLE_DIR
from tests.integration.helpers import audit_rows, count_rows_in, wait_for

TEST_BROKER_PORT = int(os.environ.get("CLINOPS_TEST_BROKER_PORT", "39092"))
TEST_WORKER_PORT = int(os.environ.get("CLINOPS_TEST_WORKER_PORT", "36066"))


REPLAY_START = datetime(2026, 3, 1, tzinfo=timezone.utc)


@dataclass(frozen=True)
class RunningWorker:
    settings: Settings
    env: dict[str, str]
    log_path: Path


@pytest.fixture(scope="session")
def bootstrap_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    external = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
    if external:
        yield external
        return
    broker = LocalBroker(
        tmp_path_factory.mktemp("kafka"),
        port=TEST_BROKER_PORT,
        controller_port=TEST_BROKER_PORT + 1,
        # Share the project's jar cache so the tests do not fetch the jars twice.
        jars=PROJECT_ROOT / "var" / "kafka" / "jars",
    )
    broker.start()
    try:
        yield broker.bootstrap_servers
    finally:
        broker.stop()


@pytest.fixture(scope="session")
def worker(bootstrap_servers: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningWorker]:
    """One worker process with its own data folder, app id and web port."""
    data_dir = tmp_path_factory.mktemp("clinops-data")
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
        "CLINOPS_DATA_DIR": str(data_dir),
        "CLINOPS_WORKER_PORT": str(TEST_WORKER_PORT),
        "CLINOPS_APP_ID": f"clinops-test-{uuid.uuid4().hex[:8]}",
        "CLINOPS_AUDIT_CHECKPOINT_INTERVAL_S": "1",
    }
    settings = Settings(
        kafka_bootstrap_servers=bootstrap_servers, data_dir=data_dir,
        worker_port=TEST_WORKER_PORT, app_id=env["CLINOPS_APP_ID"],
    )
    create_topics(bootstrap_servers)
    log_path = data_dir / "worker.log"
    try:
        process = start_worker(env, TEST_WORKER_PORT, log_path, cwd=PROJECT_ROOT)
    except ClinopsError as exc:
        pytest.fail(str(exc))
    try:
        yield RunningWorker(settings, env, log_path)
    finally:
        stop_worker(process)


@dataclass(frozen=True)
class Replayed:
    stays: list[Stay]
    run_id: str
    vitals_digests: list[str]
    vitals_event_ids: list[str]


def sql_list(values: list[str]) -> str:
    return ", ".join(f"'{value}'" for value in values)


# Every stay of the bundled sample: enough patients for the privacy scan to mean something.
REPLAYED_STAYS = 200


@pytest.fixture(scope="session")
def replayed(worker: RunningWorker) -> Replayed:
    """Replay the sample's stays from registered monitors and wait until the worker has processed all of them."""
    stays = load_stays(list_stays(SAMPLE_DIR, REPLAYED_STAYS))
    assert len(stays) == REPLAYED_STAYS
    with open_vault(worker.settings) as vault:
        vault.register_devices(replayed_monitors(stays), "integration-tests")
    run_id = uuid.uuid4().hex
    events = [e for e in merged_events(stays, REPLAY_START, run_id) if e.topic is BEDSIDE_VITALS]
    digests = [hashlib.sha256(e.value).hexdigest() for e in events]
    event_ids = [str(registry.decode(e.value)[1]["event_id"]) for e in events]

    stats = replay(stays, EventProducer(worker.settings.bootstrap_servers), speed=None, start=REPLAY_START, run_id=run_id)
    assert stats.rows == len(events)

    port = worker.settings.worker_port
    wait_for(
        lambda: audit_rows(port, "SELECT count() FROM audit_events WHERE action = 'model.performance'")[0][0],
        lambda count: int(count) >= len(stays),
    )
    wait_for(
        lambda: sum(count_rows_in(port, "SELECT 'rows', count() FROM audit_events WHERE input_sha256 IN ({values})",
                                  digests).values()),
        lambda count: count >= len(digests),
    )
    return Replayed(stays, run_id, digests, event_ids)
