"""The topic catalogue and the admin calls that create it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from schemas.errors import ClinopsError

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

# Every topic a processor joins must have the same partition count, so that one
# patient's vitals and outcomes land on the same partition number. Three partitions
# let up to three workers share the load.
PATIENT_PARTITIONS = 3


@dataclass(frozen=True)
class TopicSpec:
    """One topic: its name, partitions, retention, message key and value schema."""

    name: str
    partitions: int
    retention_ms: int
    key: str
    schema: str
    description: str


BEDSIDE_VITALS = TopicSpec(
    "bedside.vitals", PATIENT_PARTITIONS, 24 * HOUR_MS, "record number", "bedside_vitals",
    "Identified vital signs from bedside feeds; short retention because they carry identity.",
)
CLINICAL_OUTCOMES = TopicSpec(
    "clinical.outcomes", PATIENT_PARTITIONS, 24 * HOUR_MS, "record number", "clinical_outcome",
    "Identified EHR outcomes (sepsis onset, discharge).",
)
VITALS_PSEUDONYMIZED = TopicSpec(
    "vitals.pseudonymized", PATIENT_PARTITIONS, 7 * DAY_MS, "pseudonym", "pseudonymized_vitals",
    "Vital signs after the pseudonymizer.",
)
OUTCOMES_PSEUDONYMIZED = TopicSpec(
    "outcomes.pseudonymized", PATIENT_PARTITIONS, 30 * DAY_MS, "pseudonym", "pseudonymized_outcome",
    "Outcomes after the pseudonymizer: the delayed labels.",
)
RISK_SCORES = TopicSpec(
    "risk.scores", PATIENT_PARTITIONS, 30 * DAY_MS, "pseudonym", "risk_score",
    "NEWS2 and model risk for every observation.",
)
ALERTS = TopicSpec(
    "alerts.deterioration", PATIENT_PARTITIONS, 30 * DAY_MS, "pseudonym", "deterioration_alert",
    "Deterioration alerts for clinicians to acknowledge or override.",
)
AUDIT_EVENTS = TopicSpec(
    "audit.events", PATIENT_PARTITIONS, 30 * DAY_MS, "subject id", "audit_event",
    "Audit events from every stage, persisted to ClickHouse by the audit sink.",
)
AUDIT_CHECKPOINTS = TopicSpec(
    "audit.checkpoints", 1, 3650 * DAY_MS, "chain", "audit_checkpoint",
    "Signed tree heads of the audit chains, for anchoring outside the system.",
)
DEAD_LETTERS = TopicSpec(
    "dead.letters", 1, 7 * DAY_MS, "stage", "dead_letter",
    "Rejected inputs with the reason. Restricted: payloads may identify a patient.",
)

CATALOGUE: tuple[TopicSpec, ...] = (
    BEDSIDE_VITALS,
    CLINICAL_OUTCOMES,
    VITALS_PSEUDONYMIZED,
    OUTCOMES_PSEUDONYMIZED,
    RISK_SCORES,
    ALERTS,
    AUDIT_EVENTS,
    AUDIT_CHECKPOINTS,
    DEAD_LETTERS,
)


class TopicAdminError(ClinopsError):
    """Topics could not be listed or created."""


# Errors of a principal that may neither create a topic nor see it. On a secured
# cluster the admin creates the catalogue, and each client sees only its own topics.
NOT_AUTHORIZED = frozenset({"TOPIC_AUTHORIZATION_FAILED", "CLUSTER_AUTHORIZATION_FAILED"})


def create_topics(
    bootstrap_servers: str, specs: tuple[TopicSpec, ...] = CATALOGUE, timeout_s: float = 30.0,
    client_config: Mapping[str, str] | None = None,
) -> list[str]:
    """Create the catalogue's missing topics; return the names created.

    ``client_config`` adds librdkafka settings such as SASL credentials. A topic that the
    principal is not authorized to create is skipped with a log line, not raised.
    """
    admin = AdminClient({"bootstrap.servers": bootstrap_servers, **(client_config or {})})
    try:
        existing = set(admin.list_topics(timeout=timeout_s).topics)
    except KafkaException as exc:
        raise TopicAdminError(f"cannot list topics on {bootstrap_servers}: {exc}; is the broker running?") from exc

    missing = [spec for spec in specs if spec.name not in existing]
    if not missing:
        return []
    new_topics = [
        NewTopic(
            spec.name,
            num_partitions=spec.partitions,
            replication_factor=-1,  # the cluster's default.replication.factor
            config={"retention.ms": str(spec.retention_ms)},
        )
        for spec in missing
    ]
    futures = admin.create_topics(new_topics, operation_timeout=timeout_s)
    created = []
    not_authorized = []
    for name, future in futures.items():
        try:
            future.result()
        except KafkaException as exc:
            if exc.args[0].name() == "TOPIC_ALREADY_EXISTS":
                continue
            if exc.args[0].name() in NOT_AUTHORIZED:
                not_authorized.append(name)
                continue
            raise TopicAdminError(f"cannot create topic {name}: {exc}") from exc
        created.append(name)
        log.info("created topic %s", name)
    if not_authorized:
        log.info("not authorized to create or describe %d topics, so skipped them: %s",
                 len(not_authorized), ", ".join(sorted(not_authorized)))
    return created
