"""The topic catalogue and the admin calls that create it."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource, NewTopic, ResourceType

from schemas.errors import ClinopsError
from streams.settings import Settings

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
    # Carries direct identifiers: short retention, readable by the pseudonymizer only.
    identified: bool = False


BEDSIDE_VITALS = TopicSpec(
    "bedside.vitals", PATIENT_PARTITIONS, 24 * HOUR_MS, "record number", "bedside_vitals",
    "Identified vital signs from bedside feeds; short retention because they carry identity.",
    identified=True,
)
CLINICAL_OUTCOMES = TopicSpec(
    "clinical.outcomes", PATIENT_PARTITIONS, 24 * HOUR_MS, "record number", "clinical_outcome",
    "Identified EHR outcomes (sepsis onset, discharge).",
    identified=True,
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
DEAD_LETTERS_IDENTIFIED = TopicSpec(
    "dead.letters.identified", 1, 24 * HOUR_MS, "stage", "dead_letter",
    "Identified inputs that the feed or the pseudonymizer rejected, unchanged, with the reason.",
    identified=True,
)
DEAD_LETTERS = TopicSpec(
    "dead.letters", 1, 7 * DAY_MS, "stage", "dead_letter",
    "Pseudonymized inputs that a later stage rejected, with the reason.",
)
MODEL_DECISIONS = TopicSpec(
    "model.decisions", 1, 3650 * DAY_MS, "model version", "model_decision",
    "Approved champion changes (promotions and rollbacks), which every scorer applies in order.",
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
    DEAD_LETTERS_IDENTIFIED,
    DEAD_LETTERS,
    MODEL_DECISIONS,
)
IDENTIFIED_TOPICS: tuple[TopicSpec, ...] = tuple(spec for spec in CATALOGUE if spec.identified)


class TopicAdminError(ClinopsError):
    """Topics could not be listed or created."""


# Errors of a principal that may neither create a topic nor see it. On a secured
# cluster the admin creates the catalogue, and each client sees only its own topics.
NOT_AUTHORIZED = frozenset({"TOPIC_AUTHORIZATION_FAILED", "CLUSTER_AUTHORIZATION_FAILED"})


def ensure_topics(settings: Settings, align_retention: bool = False) -> list[str]:
    """Create the catalogue's missing topics with the configured retention; return the names created.

    With ``align_retention``, existing identified topics are set to the configured
    retention too. Only the worker and ``clinops topics`` do that, so that a command run
    with another environment does not change the retention behind the worker's back.
    """
    from streams.kafka_auth import security_config  # imports Faust, which most callers of this module need not

    return create_topics(settings.bootstrap_servers, client_config=security_config(settings),
                         identified_retention_ms=settings.identified_retention_ms, align_retention=align_retention)


def create_topics(
    bootstrap_servers: str,
    specs: tuple[TopicSpec, ...] = CATALOGUE,
    timeout_s: float = 30.0,
    identified_retention_ms: int | None = None,
    client_config: Mapping[str, str] | None = None,
    align_retention: bool = True,
) -> list[str]:
    """Create the catalogue's missing topics; return the names created.

    With ``identified_retention_ms``, identified topics get that retention, and with
    ``align_retention`` existing ones are changed to it, so that shortening the setting
    takes effect at the next start.
    ``client_config`` adds librdkafka settings such as SASL credentials. A topic that the
    principal is not authorized to create or reconfigure is skipped with a log line.
    """
    if identified_retention_ms is not None:
        specs = tuple(replace(spec, retention_ms=identified_retention_ms) if spec.identified else spec for spec in specs)
    admin = AdminClient({"bootstrap.servers": bootstrap_servers, "logger": logging.getLogger("librdkafka"),
                         **(client_config or {})})
    try:
        existing = set(admin.list_topics(timeout=timeout_s).topics)
    except KafkaException as exc:
        raise TopicAdminError(f"cannot list topics on {bootstrap_servers}: {exc}; is the broker running?") from exc

    if identified_retention_ms is not None and align_retention:
        _align_retention(admin, [spec for spec in specs if spec.identified and spec.name in existing], timeout_s)
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


def _align_retention(admin: AdminClient, specs: list[TopicSpec], timeout_s: float) -> None:
    """Set ``retention.ms`` on existing topics whose retention differs from their spec."""
    if not specs:
        return
    resources = [ConfigResource(ResourceType.TOPIC, spec.name) for spec in specs]
    try:
        described = {resource.name: future.result(timeout_s) for resource, future in admin.describe_configs(resources).items()}
    except KafkaException as exc:
        if exc.args[0].name() in NOT_AUTHORIZED:
            log.info("not authorized to read the retention of the identified topics, so left it to the admin")
            return
        raise TopicAdminError(f"cannot read the retention of the identified topics: {exc}") from exc
    for spec in specs:
        current = described[spec.name].get("retention.ms")
        if current is not None and current.value == str(spec.retention_ms):
            continue
        change = ConfigResource(
            ResourceType.TOPIC, spec.name,
            incremental_configs=[ConfigEntry("retention.ms", str(spec.retention_ms),
                                             incremental_operation=AlterConfigOpType.SET)],
        )
        try:
            for future in admin.incremental_alter_configs([change]).values():
                future.result(timeout_s)
        except KafkaException as exc:
            if exc.args[0].name() in NOT_AUTHORIZED:
                log.info("not authorized to set the retention of %s, so left it to the admin", spec.name)
                continue
            raise TopicAdminError(f"cannot set the retention of {spec.name}: {exc}") from exc
        log.info("set the retention of %s to %d hours", spec.name, spec.retention_ms // HOUR_MS)
