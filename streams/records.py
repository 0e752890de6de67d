"""Builders for the two events every stage may emit: audit events and dead letters."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timezone
from typing import Any

from schemas.models import AuditEvent, DeadLetter

# Audit event ids are UUIDv5 in this namespace over (actor, action, input hash), so a
# redelivered input yields the same audit event id and the sink can drop the repeat.
AUDIT_NAMESPACE = uuid.UUID("6f1c2a0e-3d4b-5c6d-8e7f-90a1b2c3d4e5")


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def audit_event(
    *,
    actor: str,
    action: str,
    subject_type: str,
    subject_id: str,
    input_bytes: bytes,
    occurred_at: datetime,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Build the audit event for one action on one input.

    ``details`` must hold no direct identifier; callers pass pseudonyms, codes and
    numbers only.
    """
    digest = sha256_hex(input_bytes)
    return AuditEvent(
        event_id=uuid.uuid5(AUDIT_NAMESPACE, f"{actor}|{action}|{digest}"),
        occurred_at=occurred_at,
        emitted_at=datetime.now(timezone.utc),
        actor=actor,
        action=action,
        subject_type=subject_type,
        subject_id=subject_id,
        input_sha256=digest,
        details=json.dumps(details or {}, sort_keys=True, separators=(",", ":"), default=str),
    )


def dead_letter(
    *, stage: str, topic: str, partition: int, offset: int, error_type: str, reason: str, payload: bytes
) -> DeadLetter:
    position = f"{stage}|{topic}|{partition}|{offset}"
    return DeadLetter(
        # One input position gives one dead letter id, however often it is redelivered.
        event_id=uuid.uuid5(AUDIT_NAMESPACE, position),
        stage=stage,
        topic=topic,
        partition=partition,
        offset=offset,
        error_type=error_type,
        reason=reason,
        payload=payload,
        rejected_at=datetime.now(timezone.utc),
    )


def rejection_audit(letter: DeadLetter, occurred_at: datetime | None = None) -> AuditEvent:
    """Build the ``input.rejected`` audit event that accompanies a dead letter.

    The subject is the input's topic position, never its key, because the key of an
    identified topic is a record number.
    """
    return audit_event(
        actor=letter.stage,
        action="input.rejected",
        subject_type="topic_offset",
        subject_id=f"{letter.topic}/{letter.partition}/{letter.offset}",
        input_bytes=letter.payload,
        occurred_at=occurred_at or letter.rejected_at,
        details={"error_type": letter.error_type, "reason": letter.reason, "dead_letter_id": str(letter.event_id)},
    )
