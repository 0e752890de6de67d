"""The secured local broker: SASL/PLAIN logins and one ACL set per role, with real clients.

The module starts its own secured broker on ports of its own, beside the plaintext
broker of the other integration tests, creates the catalogue as the admin and applies
the role ACLs. Clients get their settings the way a user's process does: from the
CLINOPS_KAFKA_* settings, with the password read from the broker's password file. The
last tests run a real pseudonymizer worker as the pseudonymizer user.
"""

from __future__ import annotations

import json
import os
import stat
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AclBinding, AclOperation, AclPermissionType, AdminClient, ResourcePatternType, ResourceType

from clinops.worker_process import start_worker, stop_worker
from infra.kafka import sasl
from infra.kafka.acls import ANALYTICS, CLINICIAN, IDENTIFIED_DEAD_LETTERS, PSEUDONYMIZER, apply_acls, list_acls
from infra.kafka.launcher import LocalBroker
from schemas.codec import registry
from processors.model_decisions import DecisionFeed
from processors.vault import open_vault
from schemas.errors import ClinopsError, DecodeError
from schemas.models import ModelAction, ModelDecision
from streams.kafka_auth import security_config
from streams.producer import EventProducer
from streams.settings import PROJECT_ROOT, Settings
from streams.sources.physionet import list_stays
from streams.sources.replay import load_stays, merged_events, replay, replayed_monitors
from streams.topic_reader import TopicReadError, read_topic
from streams.topics import (
    BEDSIDE_VITALS, CATALOGUE, CLINICAL_OUTCOMES, MODEL_DECISIONS, RISK_SCORES, VITALS_PSEUDONYMIZED, create_topics,
)
from tests.conftest import SAMPLE_DIR
from tests.integration.conftest import REPLAY_START
from tests.integration.helpers import wait_for

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(
        bool(os.environ.get("KAFKA_BOOTSTRAP_SERVERS")),
        reason="tests the local broker's secured mode; KAFKA_BOOTSTRAP_SERVERS selects another cluster",
    ),
]

SECURED_BROKER_PORT = int(os.environ.get("CLINOPS_TEST_SECURED_BROKER_PORT", "39094"))
SECURED_WORKER_PORT = int(os.environ.get("CLINOPS_TEST_SECURED_WORKER_PORT", "39096"))
# Authorization errors arrived within a second on a 2-core machine, so 15 s covers a loaded CI run.
CLIENT_TIMEOUT_S = 15.0
IDENTIFIED_TOPICS = (BEDSIDE_VITALS.name, CLINICAL_OUTCOMES.name, IDENTIFIED_DEAD_LETTERS)


@pytest.fixture(scope="module")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalBroker]:
    broker = LocalBroker(
        tmp_path_factory.mktemp("kafka-secured"),
        port=SECURED_BROKER_PORT,
        controller_port=SECURED_BROKER_PORT + 1,
        jars=PROJECT_ROOT / "var" / "kafka" / "jars",
        secured=True,
    )
    broker.start()
    try:
        admin = broker.client_config()
        create_topics(broker.bootstrap_servers, CATALOGUE, client_config=admin)
        apply_acls(broker.bootstrap_servers, admin)
        yield broker
    finally:
        broker.stop()


def client_settings(broker: LocalBroker, user: str, password: str | None = None) -> Settings:
    """Return the settings of a process that logs in as ``user``, as CLINOPS_KAFKA_* would set them."""
    passwords = json.loads(broker.password_file.read_text())
    return Settings(
        kafka_bootstrap_servers=broker.bootstrap_servers,
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_mechanism="PLAIN",
        kafka_username=user,
        kafka_password=password or passwords[user],
    )


def login(broker: LocalBroker, user: str) -> dict[str, str]:
    return security_config(client_settings(broker, user))


def produce_error(broker: LocalBroker, config: Mapping[str, str], topic: str) -> KafkaError | None:
    """Produce one message as an idempotent producer and return its delivery error, or None."""
    errors: list[KafkaError | None] = []
    producer = Producer({
        "bootstrap.servers": broker.bootstrap_servers, "enable.idempotence": True, "acks": "all",
        "message.timeout.ms": int(CLIENT_TIMEOUT_S * 1000), **config,
    })
    producer.produce(topic, key=b"test", value=uuid.uuid4().bytes, on_delivery=lambda error, _: errors.append(error))
    assert producer.flush(CLIENT_TIMEOUT_S * 2) == 0, "the delivery report did not arrive"
    return errors[0]


def subscribe_error_codes(broker: LocalBroker, config: Mapping[str, str], topic: str, group: str) -> tuple[set[int], int]:
    """Subscribe to ``topic`` as a member of ``group`` and return the error codes and the message count.

    Reports TOPIC_AUTHORIZATION_FAILED for a topic that the principal may not even describe.
    """
    consumer = Consumer({
        "bootstrap.servers": broker.bootstrap_servers, "group.id": group, "auto.offset.reset": "earliest", **config,
    })
    consumer.subscribe([topic])
    return poll_error_codes(consumer)


def fetch_error_codes(broker: LocalBroker, config: Mapping[str, str], topic: str) -> tuple[set[int], int]:
    """Fetch ``topic`` from offset 0 without joining a group and return the error codes and the message count.

    Tests the topic's READ ACL alone, for a principal that may describe the topic but
    has no consumer group.
    """
    consumer = Consumer({
        "bootstrap.servers": broker.bootstrap_servers, "group.id": f"no-group-{uuid.uuid4()}",
        "enable.auto.commit": False, **config,
    })
    partitions = range(CATALOGUE[0].partitions)
    consumer.assign([TopicPartition(topic, partition, 0) for partition in partitions])
    return poll_error_codes(consumer)


def poll_error_codes(consumer: Consumer) -> tuple[set[int], int]:
    """Poll until a topic authorization error or the timeout, then close the consumer."""
    codes: set[int] = set()
    messages = 0
    try:
        deadline = time.monotonic() + CLIENT_TIMEOUT_S
        while KafkaError.TOPIC_AUTHORIZATION_FAILED not in codes and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error():
                codes.add(message.error().code())
            else:
                messages += 1
    finally:
        consumer.close()
    return codes, messages


def consume_values(broker: LocalBroker, config: Mapping[str, str], topic: str, group: str, expected: bytes) -> list[bytes]:
    """Subscribe as a group member, read until ``expected`` arrives and return the values read."""
    consumer = Consumer({
        "bootstrap.servers": broker.bootstrap_servers, "group.id": group, "auto.offset.reset": "earliest", **config,
    })
    values: list[bytes] = []
    try:
        consumer.subscribe([topic])
        deadline = time.monotonic() + CLIENT_TIMEOUT_S * 2
        while expected not in values and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                values.append(message.value())
    finally:
        consumer.close()
    return values


def connection_errors(bootstrap_servers: str, config: Mapping[str, str]) -> list[KafkaError]:
    """Connect with ``config`` and return the client errors of the first attempt."""
    errors: list[KafkaError] = []
    admin = AdminClient({"bootstrap.servers": bootstrap_servers, "error_cb": errors.append, **config})
    deadline = time.monotonic() + CLIENT_TIMEOUT_S
    while not errors and time.monotonic() < deadline:
        admin.poll(0.2)
    return errors


@pytest.mark.parametrize("topic", IDENTIFIED_TOPICS)
def test_analytics_cannot_read_identified(broker: LocalBroker, topic: str) -> None:
    group = f"{ANALYTICS.group_prefix}-test-{uuid.uuid4()}"
    codes, messages = subscribe_error_codes(broker, login(broker, "analytics"), topic, group)
    assert KafkaError.TOPIC_AUTHORIZATION_FAILED in codes
    assert messages == 0


@pytest.mark.parametrize("topic", IDENTIFIED_TOPICS)
def test_analytics_cannot_produce_identified(broker: LocalBroker, topic: str) -> None:
    error = produce_error(broker, login(broker, "analytics"), topic)
    assert error is not None
    assert error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_reading_denied_topic_is_error(broker: LocalBroker) -> None:
    # A privacy scan run as the wrong user must fail, not report an empty topic.
    with pytest.raises(TopicReadError, match="TOPIC_AUTHORIZATION_FAILED|[Aa]uthoriz"):
        read_topic(broker.bootstrap_servers, BEDSIDE_VITALS.name, timeout_s=CLIENT_TIMEOUT_S,
                   client_config=login(broker, "analytics"))


def test_analytics_does_not_see_identified(broker: LocalBroker) -> None:
    visible = set(AdminClient({"bootstrap.servers": broker.bootstrap_servers, **login(broker, "analytics")})
                  .list_topics(timeout=CLIENT_TIMEOUT_S).topics)
    assert VITALS_PSEUDONYMIZED.name in visible
    assert visible.isdisjoint(IDENTIFIED_TOPICS)


def test_analytics_reads_pseudonymized_vitals(broker: LocalBroker) -> None:
    value = uuid.uuid4().bytes
    producer = EventProducer(broker.bootstrap_servers, **login(broker, "pseudonymizer"))
    producer.send(VITALS_PSEUDONYMIZED, "pseudonym", value)
    producer.flush(CLIENT_TIMEOUT_S)

    group = f"{ANALYTICS.group_prefix}-test-{uuid.uuid4()}"
    values = consume_values(broker, login(broker, "analytics"), VITALS_PSEUDONYMIZED.name, group, value)
    assert value in values


def test_analytics_writes_and_reads_risk_scores(broker: LocalBroker) -> None:
    value = uuid.uuid4().bytes
    analytics = login(broker, "analytics")
    producer = EventProducer(broker.bootstrap_servers, **analytics)
    producer.send(RISK_SCORES, "pseudonym", value)
    producer.flush(CLIENT_TIMEOUT_S)

    group = f"{ANALYTICS.group_prefix}-test-{uuid.uuid4()}"
    assert value in consume_values(broker, analytics, RISK_SCORES.name, group, value)


def test_model_decisions_admin_only_writes(broker: LocalBroker) -> None:
    # A scorer logged in as analytics follows the decision log, but cannot promote a model itself.
    decision = ModelDecision(decision_id=uuid.uuid4(), action=ModelAction.PROMOTE, version="srp-00000000",
                             previous_version="logreg-00000000", decided_by="dr.osei", reason="secured broker test",
                             approval_event_id=uuid.uuid4(), decided_at=datetime.now(timezone.utc))
    producer = EventProducer(broker.bootstrap_servers, **broker.client_config())
    producer.send(MODEL_DECISIONS, decision.version, decision)
    producer.flush(CLIENT_TIMEOUT_S)

    feed = DecisionFeed(broker.bootstrap_servers, login(broker, "analytics"))
    try:
        read = feed.read_to_end(CLIENT_TIMEOUT_S)
    finally:
        feed.close()
    assert decision in read
    error = produce_error(broker, login(broker, "analytics"), MODEL_DECISIONS.name)
    assert error is not None
    assert error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_analytics_cannot_produce_pseudonymized_vitals(broker: LocalBroker) -> None:
    error = produce_error(broker, login(broker, "analytics"), VITALS_PSEUDONYMIZED.name)
    assert error is not None
    assert error.code() == KafkaError.TOPIC_AUTHORIZATION_FAILED


def test_feed_writes_bedside_vitals(broker: LocalBroker) -> None:
    # An idempotent producer without an IdempotentWrite ACL: WRITE on the topic suffices.
    assert produce_error(broker, login(broker, "feed"), BEDSIDE_VITALS.name) is None


def test_feed_cannot_read_bedside_vitals(broker: LocalBroker) -> None:
    codes, messages = fetch_error_codes(broker, login(broker, "feed"), BEDSIDE_VITALS.name)
    assert KafkaError.TOPIC_AUTHORIZATION_FAILED in codes
    assert messages == 0


def test_clinician_cannot_read_risk_scores(broker: LocalBroker) -> None:
    group = f"{CLINICIAN.group_prefix}{uuid.uuid4()}"
    codes, messages = subscribe_error_codes(broker, login(broker, "clinician"), RISK_SCORES.name, group)
    assert KafkaError.TOPIC_AUTHORIZATION_FAILED in codes
    assert messages == 0


def test_wrong_password_rejected(broker: LocalBroker) -> None:
    config = security_config(client_settings(broker, "analytics", password="not-the-password-0123456789"))
    errors = connection_errors(broker.bootstrap_servers, config)
    assert [error.code() for error in errors][:1] == [KafkaError._AUTHENTICATION]


def test_unknown_user_rejected(broker: LocalBroker) -> None:
    config = security_config(client_settings(broker, "nobody", password="not-the-password-0123456789"))
    errors = connection_errors(broker.bootstrap_servers, config)
    assert [error.code() for error in errors][:1] == [KafkaError._AUTHENTICATION]


def test_controller_listener_rejects_role_users(broker: LocalBroker) -> None:
    errors = connection_errors(f"127.0.0.1:{broker.controller_port}", login(broker, "analytics"))
    assert [error.code() for error in errors][:1] == [KafkaError._AUTHENTICATION]


@pytest.mark.parametrize("listener", ["client", "controller"])
def test_client_without_sasl_gets_no_metadata(broker: LocalBroker, listener: str) -> None:
    port = broker.port if listener == "client" else broker.controller_port
    admin = AdminClient({"bootstrap.servers": f"127.0.0.1:{port}"})
    with pytest.raises(KafkaException):
        admin.list_topics(timeout=5)


def test_secrets_readable_by_owner_only(broker: LocalBroker) -> None:
    assert stat.S_IMODE(broker.password_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(broker.properties_file.stat().st_mode) == 0o600


def test_broker_log_contains_no_password(broker: LocalBroker) -> None:
    log_text = broker.log_file.read_text(errors="replace")
    passwords = sasl.read_passwords(broker.password_file).values()
    assert [password for password in passwords if password in log_text] == []


def test_apply_acls_removes_stale_grant(broker: LocalBroker) -> None:
    admin_config = broker.client_config()
    stale = AclBinding(ResourceType.TOPIC, "stale.topic", ResourcePatternType.LITERAL, ANALYTICS.principal, "*",
                       AclOperation.READ, AclPermissionType.ALLOW)
    admin = AdminClient({"bootstrap.servers": broker.bootstrap_servers, **admin_config})
    admin.create_acls([stale])[stale].result()
    assert stale in list_acls(broker.bootstrap_servers, admin_config)

    apply_acls(broker.bootstrap_servers, admin_config)
    assert stale not in list_acls(broker.bootstrap_servers, admin_config)


def event_id(value: bytes) -> str | None:
    """Return an Avro event's id, or None for the raw test values that other tests produce."""
    try:
        return str(registry.decode(value)[1]["event_id"])
    except DecodeError:
        return None


@dataclass(frozen=True)
class PseudonymizerWorker:
    log_path: Path
    password: str


@pytest.fixture(scope="module")
def pseudonymizer_worker(broker: LocalBroker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PseudonymizerWorker]:
    """A `clinops worker --stages pseudonymizer` process that logs in as the pseudonymizer user."""
    data_dir = tmp_path_factory.mktemp("pseudonymizer-data")
    password = sasl.read_passwords(broker.password_file)[PSEUDONYMIZER.user]
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "CLINOPS_DATA_DIR": str(data_dir),
        "CLINOPS_WORKER_PORT": str(SECURED_WORKER_PORT),
        # Within the role's group and topic prefixes, and new for each run.
        "CLINOPS_APP_ID": f"{PSEUDONYMIZER.group_prefix}-test-{uuid.uuid4().hex[:8]}",
        "CLINOPS_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT",
        "CLINOPS_KAFKA_USERNAME": PSEUDONYMIZER.user,
        "CLINOPS_KAFKA_PASSWORD": password,
    }
    with open_vault(Settings(data_dir=data_dir)) as vault:
        vault.register_devices(replayed_monitors(load_stays(list_stays(SAMPLE_DIR, 1))), "secured-broker-test")
    log_path = data_dir / "worker.log"
    try:
        process = start_worker(env, SECURED_WORKER_PORT, log_path, "--stages", "pseudonymizer", cwd=PROJECT_ROOT)
    except ClinopsError as exc:
        pytest.fail(str(exc))
    try:
        yield PseudonymizerWorker(log_path, password)
    finally:
        stop_worker(process)


def test_pseudonymizer_worker_pseudonymizes_feed(broker: LocalBroker, pseudonymizer_worker: PseudonymizerWorker) -> None:
    stays = load_stays(list_stays(SAMPLE_DIR, 1))
    run_id = uuid.uuid4().hex
    identified = [registry.decode(e.value)[1] for e in merged_events(stays, REPLAY_START, run_id) if e.topic is BEDSIDE_VITALS]
    event_ids = {str(fields["event_id"]) for fields in identified}
    replay(stays, EventProducer(broker.bootstrap_servers, **login(broker, "feed")), speed=None, start=REPLAY_START, run_id=run_id)

    analytics = login(broker, "analytics")

    def read_run() -> list[bytes]:
        messages = read_topic(broker.bootstrap_servers, VITALS_PSEUDONYMIZED.name, client_config=analytics)
        return [m.value() for m in messages if event_id(m.value()) in event_ids]

    values = wait_for(read_run, lambda found: len(found) >= len(event_ids), timeout_s=60)
    assert len(values) == len(event_ids)
    blob = b"\n".join(values)
    assert identified[0]["record_number"].encode() not in blob
    assert identified[0]["patient_name"].encode() not in blob


def test_worker_log_contains_no_password(pseudonymizer_worker: PseudonymizerWorker) -> None:
    log_text = pseudonymizer_worker.log_path.read_text(errors="replace")
    assert "Authenticated as pseudonymizer" in log_text, "the worker log is not where the test looks"
    assert pseudonymizer_worker.password not in log_text
