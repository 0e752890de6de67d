"""The roles of the secured local broker and the Kafka ACLs that each role gets.

Each role is one SASL user, so its principal is ``User:<name>``. Only the pseudonymizer
reads identified topics. The analytics workers and clinicians see only what comes out
of the pseudonymizer. The admin (infra.kafka.sasl.ADMIN_USER) is a super user and needs
no ACL. Kafka's authorizer treats READ and WRITE on a topic or group as including
DESCRIBE, so the table grants no DESCRIBE of its own.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding, AclBindingFilter, AclOperation, AclPermissionType, AdminClient, ResourcePatternType, ResourceType,
)

from schemas.errors import ClinopsError
from streams.topics import (
    ALERTS, AUDIT_CHECKPOINTS, AUDIT_EVENTS, BEDSIDE_VITALS, CLINICAL_OUTCOMES, DEAD_LETTERS, DEAD_LETTERS_IDENTIFIED,
    MODEL_DECISIONS, OUTCOMES_PSEUDONYMIZED, RISK_SCORES, VITALS_PSEUDONYMIZED,
)

# The feed's and the pseudonymizer's dead letters, which may identify a patient.
IDENTIFIED_DEAD_LETTERS = DEAD_LETTERS_IDENTIFIED.name

# Seconds that apply_acls waits for the broker to report the new ACLs.
ACL_PROPAGATION_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class Role:
    """One SASL user and the topics and consumer groups that it may use."""

    user: str
    description: str
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    # Consumer groups whose id starts with this prefix.
    group_prefix: str | None = None
    # Topics with this prefix, which a Faust app creates for itself (its leader topic).
    own_topic_prefix: str | None = None

    @property
    def principal(self) -> str:
        return f"User:{self.user}"


FEED = Role(
    "feed", "bedside feeds and the replay",
    # The replay also dead-letters malformed rows and audits each rejection.
    writes=(BEDSIDE_VITALS.name, CLINICAL_OUTCOMES.name, IDENTIFIED_DEAD_LETTERS, AUDIT_EVENTS.name),
)
PSEUDONYMIZER = Role(
    "pseudonymizer", "the worker that runs the pseudonymizer stage (CLINOPS_APP_ID=clinops-pseudonymizer)",
    reads=(BEDSIDE_VITALS.name, CLINICAL_OUTCOMES.name),
    writes=(VITALS_PSEUDONYMIZED.name, OUTCOMES_PSEUDONYMIZED.name, AUDIT_EVENTS.name,
            IDENTIFIED_DEAD_LETTERS),
    group_prefix="clinops-pseudonymizer",
    own_topic_prefix="clinops-pseudonymizer-",
)
ANALYTICS = Role(
    "analytics", "the workers that run the scorer and the audit writer (CLINOPS_APP_ID=clinops-analytics)",
    # The model decisions are written only by the admin, through `clinops models`.
    reads=(VITALS_PSEUDONYMIZED.name, OUTCOMES_PSEUDONYMIZED.name, RISK_SCORES.name, ALERTS.name,
           AUDIT_EVENTS.name, AUDIT_CHECKPOINTS.name, MODEL_DECISIONS.name),
    writes=(RISK_SCORES.name, ALERTS.name, AUDIT_EVENTS.name, AUDIT_CHECKPOINTS.name, DEAD_LETTERS.name),
    group_prefix="clinops-analytics",
    own_topic_prefix="clinops-analytics-",
)
CLINICIAN = Role(
    "clinician", "the alert console (`clinops alerts`), which only reads",
    reads=(ALERTS.name,),
    # The group id prefix of streams.consoles.alerts.follow_alerts.
    group_prefix="clinops-alerts-console-",
)

ROLES: tuple[Role, ...] = (FEED, PSEUDONYMIZER, ANALYTICS, CLINICIAN)


class AclError(ClinopsError):
    """ACLs could not be created, listed or deleted."""


def role_bindings(role: Role) -> list[AclBinding]:
    """Return the ALLOW bindings that grant ``role`` its table entry, from any host."""

    def allow(resource: ResourceType, name: str, pattern: ResourcePatternType, operation: AclOperation) -> AclBinding:
        return AclBinding(resource, name, pattern, role.principal, "*", operation, AclPermissionType.ALLOW)

    bindings = [allow(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, AclOperation.READ) for topic in role.reads]
    bindings += [allow(ResourceType.TOPIC, topic, ResourcePatternType.LITERAL, AclOperation.WRITE) for topic in role.writes]
    if role.group_prefix is not None:
        bindings.append(allow(ResourceType.GROUP, role.group_prefix, ResourcePatternType.PREFIXED, AclOperation.READ))
    if role.own_topic_prefix is not None:
        for operation in (AclOperation.CREATE, AclOperation.READ, AclOperation.WRITE):
            bindings.append(allow(ResourceType.TOPIC, role.own_topic_prefix, ResourcePatternType.PREFIXED, operation))
    return bindings


def apply_acls(bootstrap_servers: str, client_config: Mapping[str, str], roles: tuple[Role, ...] = ROLES) -> None:
    """Make the broker's ACLs for the roles' principals match ``roles`` exactly.

    Creates the missing bindings, deletes those of the same principals that the table no
    longer grants, and returns once the broker reports the result. ``client_config`` must
    authenticate a principal that may alter ACLs, such as the admin.
    """
    admin = _admin(bootstrap_servers, client_config)
    expected = {binding for role in roles for binding in role_bindings(role)}
    principals = {role.principal for role in roles}

    _wait_all(admin.create_acls(sorted(expected, key=str)), "create")
    stale = [binding for binding in _describe(admin) if binding.principal in principals and binding not in expected]
    if stale:
        _wait_all(admin.delete_acls([_exact_filter(binding) for binding in stale]), "delete")

    deadline = time.monotonic() + ACL_PROPAGATION_TIMEOUT_S
    while True:
        current = {binding for binding in _describe(admin) if binding.principal in principals}
        if current == expected:
            return
        if time.monotonic() > deadline:
            raise AclError(
                f"the broker on {bootstrap_servers} did not report the expected ACLs within "
                f"{ACL_PROPAGATION_TIMEOUT_S:.0f} s: {len(expected - current)} missing, {len(current - expected)} extra"
            )
        time.sleep(0.2)


def list_acls(bootstrap_servers: str, client_config: Mapping[str, str]) -> list[AclBinding]:
    """Return every ACL binding on the broker, sorted by principal, resource and operation."""
    bindings = _describe(_admin(bootstrap_servers, client_config))
    return sorted(bindings, key=lambda b: (b.principal, b.restype.name, b.name, b.operation.name))


def _admin(bootstrap_servers: str, client_config: Mapping[str, str]) -> AdminClient:
    return AdminClient({"bootstrap.servers": bootstrap_servers, **client_config})


def _describe(admin: AdminClient) -> list[AclBinding]:
    match_all = AclBindingFilter(
        ResourceType.ANY, None, ResourcePatternType.ANY, None, None, AclOperation.ANY, AclPermissionType.ANY
    )
    try:
        return list(admin.describe_acls(match_all, request_timeout=10).result())
    except KafkaException as exc:
        raise AclError(f"cannot list ACLs: {exc}") from exc


def _exact_filter(binding: AclBinding) -> AclBindingFilter:
    return AclBindingFilter(
        binding.restype, binding.name, binding.resource_pattern_type, binding.principal, binding.host,
        binding.operation, binding.permission_type,
    )


def _wait_all(futures: Mapping[object, object], verb: str) -> None:
    for binding, future in futures.items():
        try:
            future.result()
        except KafkaException as exc:
            raise AclError(f"cannot {verb} the ACL {binding}: {exc}") from exc
