"""A confluent-kafka producer for the edges (feeds, replay, consoles, benchmarks)."""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError, Message, Producer

from schemas.errors import ClinopsError
from schemas.models import Event
from streams.topics import TopicSpec

log = logging.getLogger(__name__)


class DeliveryError(ClinopsError):
    """The broker did not acknowledge every produced message."""


class EventProducer:
    """Produce Avro events with idempotent, acknowledged delivery.

    ``acks=all`` with idempotence means a message the broker acknowledged is neither
    lost nor duplicated by the producer's own retries.
    """

    def __init__(self, bootstrap_servers: str, **config: str | int) -> None:
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap_servers,
                "enable.idempotence": True,
                "acks": "all",
                # Batch for up to 5 ms: throughput at replay speed, invisible at bedside rates.
                "linger.ms": 5,
                # No compression: the Faust workers' aiokafka reads lz4, snappy and zstd
                # only with extra native packages, and gzip costs more CPU than it saves.
                "compression.type": "none",
                "logger": logging.getLogger("librdkafka"),
                **config,
            }
        )
        self.delivered = 0
        self.failed = 0

    def send(self, topic: TopicSpec, key: str | bytes, event: Event | bytes, partition: int | None = None) -> None:
        value = event if isinstance(event, bytes) else event.to_avro()
        self.send_record(topic.name, key, value, partition)

    def send_record(self, topic: str, key: str | bytes, value: bytes | None, partition: int | None = None) -> None:
        """Produce one message as given; ``value`` None is a tombstone, ``partition`` None lets the key decide."""
        extra = {} if partition is None else {"partition": partition}
        while True:
            try:
                self._producer.produce(topic, key=key, value=value, on_delivery=self._on_delivery, **extra)
                break
            except BufferError:
                # The local queue is full: wait for deliveries to free room, then retry.
                self._producer.poll(0.1)
        self._producer.poll(0)

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is None:
            self.delivered += 1
            return
        self.failed += 1
        log.error("delivery to %s failed: %s", message.topic(), error)

    def poll(self) -> None:
        """Serve delivery callbacks without waiting."""
        self._producer.poll(0)

    def flush(self, timeout_s: float = 60.0) -> None:
        """Wait until every message is acknowledged; raise DeliveryError otherwise."""
        remaining = self._producer.flush(timeout_s)
        if remaining:
            raise DeliveryError(f"{remaining} messages were not delivered within {timeout_s:.0f} s; is the broker up?")
        if self.failed:
            raise DeliveryError(f"{self.failed} messages failed delivery; see the log above")
