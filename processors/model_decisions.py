"""The governance log of champion changes, kept in the ``model.decisions`` topic.

Each decision names the version that becomes the champion. A promotion pushes a
version onto the champion history and a rollback pops the last one, so replaying the
log from the start gives every worker the same champion, and `clinops models
rollback` can name the version it restores. The topic has one partition, so every
reader sees the decisions in the order they were approved.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, TopicPartition

from schemas.errors import DecodeError
from schemas.models import ModelAction, ModelDecision
from streams.topic_reader import TopicReadError
from streams.topics import MODEL_DECISIONS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnreadableDecision:
    """A message in the decision log that is not a valid decision; workers audit it as refused and skip it."""

    offset: int
    reason: str


def champion_history(decisions: Iterable[ModelDecision | UnreadableDecision], default: str) -> list[str]:
    """Return the champions so far, oldest first; the last one scores live.

    ``default`` is the champion before any decision: the configured model's version.
    """
    history = [default]
    for decision in decisions:
        if isinstance(decision, UnreadableDecision):
            continue
        if decision.action is ModelAction.PROMOTE:
            history.append(decision.version)
        elif len(history) > 1:
            history.pop()
    return history


class DecisionFeed:
    """A reader of the decision log from its start, outside any consumer group, so every worker reads all of it."""

    def __init__(self, bootstrap_servers: str, client_config: Mapping[str, str] | None = None) -> None:
        self._consumer = Consumer({
            "bootstrap.servers": bootstrap_servers,
            # Required by the client, never used: the feed assigns its partition and commits nothing.
            "group.id": f"clinops-decisions-{uuid.uuid4()}",
            "enable.auto.commit": False,
            "logger": logging.getLogger("librdkafka"),
            **(client_config or {}),
        })
        self._consumer.assign([TopicPartition(MODEL_DECISIONS.name, 0, 0)])

    def end_offset(self, timeout_s: float = 10.0) -> int:
        return self._consumer.get_watermark_offsets(TopicPartition(MODEL_DECISIONS.name, 0), timeout=timeout_s)[1]

    def poll(self, timeout_s: float = 0.0) -> list[ModelDecision | UnreadableDecision]:
        """Return the decisions that arrived since the last call, waiting at most ``timeout_s`` for the first."""
        decisions: list[ModelDecision | UnreadableDecision] = []
        for message in self._consumer.consume(100, timeout=timeout_s):
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("reading %s failed: %s", MODEL_DECISIONS.name, error.str())
                continue
            try:
                decisions.append(ModelDecision.from_avro(message.value()))
            except (DecodeError, ValueError) as exc:  # ValidationError is a ValueError
                decisions.append(UnreadableDecision(message.offset(), str(exc)))
        return decisions

    def read_to_end(self, timeout_s: float = 30.0) -> list[ModelDecision | UnreadableDecision]:
        """Return every decision up to the log's current end."""
        end = self.end_offset()
        decisions: list[ModelDecision | UnreadableDecision] = []
        position = self._consumer.position([TopicPartition(MODEL_DECISIONS.name, 0)])[0].offset
        if end == 0 or position >= end:
            return decisions
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            decisions += self.poll(0.5)
            position = self._consumer.position([TopicPartition(MODEL_DECISIONS.name, 0)])[0].offset
            if position >= end:
                return decisions
        raise TopicReadError(f"reading {MODEL_DECISIONS.name} timed out before its end, after {timeout_s:.0f} s; "
                             "check that the broker is reachable")

    def close(self) -> None:
        self._consumer.close()
