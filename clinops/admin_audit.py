"""Audit events for actions that people take through the command line."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from streams.kafka_auth import security_config
from streams.producer import EventProducer
from streams.records import audit_event
from streams.settings import Settings
from streams.topics import AUDIT_EVENTS


def record_admin_action(settings: Settings, actor: str, action: str, subject_type: str, subject_id: str,
                        details: dict[str, str]) -> uuid.UUID:
    """Send the audit event of an action taken by ``actor`` to the audit topic; return its id.

    The audit writer chains it like any stage's event. The caller keeps identifiers out
    of ``subject_id`` and ``details``.
    """
    now = datetime.now(timezone.utc)
    event = audit_event(actor=actor, action=action, subject_type=subject_type, subject_id=subject_id,
                        input_bytes=f"{action}:{subject_id}:{now.isoformat()}".encode(), occurred_at=now, details=details)
    producer = EventProducer(settings.bootstrap_servers, **security_config(settings))
    producer.send(AUDIT_EVENTS, subject_id, event)
    producer.flush()
    return event.event_id
