"""The audit sink: persist audit events from the topic to the audit store.

Audit event ids are derived from the action and its input, so a redelivered event
carries the same id. The sink skips ids it has written recently.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence

from processors.messages import Input, Output, reject
from schemas.errors import DecodeError
from schemas.models import AuditEvent
from streams.sinks.audit_store import AuditStore

log = logging.getLogger(__name__)

STAGE = "audit-sink"
# Ids remembered for deduplication: a redelivery after a rebalance repeats at most
# one uncommitted batch per partition, far fewer than this.
RECENT_IDS = 200_000


class AuditSink:
    name = STAGE

    def __init__(self, store: AuditStore) -> None:
        self.store = store
        self.written = 0
        self._recent: OrderedDict[str, None] = OrderedDict()

    def handle_batch(self, messages: Sequence[Input]) -> list[Output]:
        """Write a batch of audit messages; return dead letters for undecodable ones.

        A rejected audit message is itself recorded: its ``input.rejected`` audit event
        is written to the store directly, since sending it back to the topic would loop.
        """
        rows: list[AuditEvent] = []
        outputs: list[Output] = []
        batch_ids: set[str] = set()
        for message in messages:
            try:
                event = AuditEvent.from_avro(message.value)
            except (DecodeError, ValueError) as exc:
                log.warning("rejected %s/%d/%d: %s", message.topic, message.partition, message.offset, exc)
                letter, audit = reject(STAGE, message, exc)
                outputs.append(letter)
                event = audit.event
            key = str(event.event_id)
            if key in self._recent or key in batch_ids:
                continue
            batch_ids.add(key)
            rows.append(event)

        # Ids are remembered only once written, so a failed insert is retried in full.
        self.store.insert_audit(rows)
        self.written += len(rows)
        for row in rows:
            self._recent[str(row.event_id)] = None
        while len(self._recent) > RECENT_IDS:
            self._recent.popitem(last=False)
        return outputs
