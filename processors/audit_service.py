"""Run the audit writer on a Kafka consumer thread inside the worker process.

The writer uses a plain confluent-kafka consumer instead of a Faust agent, because its
offsets live in the audit store with the rows. On assignment it seeks each partition to
the offset after the last stored row, and it never commits offsets to Kafka.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timezone

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

from processors.audit_writer import ChainWriter, checkpoint_event
from processors.messages import Input
from streams.producer import EventProducer
from streams.topics import AUDIT_CHECKPOINTS, AUDIT_EVENTS

log = logging.getLogger(__name__)

# Up to this many messages per poll: large batches make large, cheap ClickHouse inserts,
# and 0.2 s keeps the trail close to live when traffic is light.
BATCH_MESSAGES = 5000
POLL_TIMEOUT_S = 0.2


class AuditWriterService:
    def __init__(
        self, writer: ChainWriter, bootstrap_servers: str, group_id: str, instance_id: str,
        client_config: Mapping[str, str] | None = None,
    ) -> None:
        """``client_config`` adds librdkafka settings, such as SASL credentials, to the consumer and producer."""
        self.writer = writer
        self.producer = EventProducer(bootstrap_servers, **(client_config or {}))
        self._consumer = Consumer({
            "bootstrap.servers": bootstrap_servers,
            "group.id": group_id,
            # Static membership: a writer restarted after a crash takes its partitions
            # back at once, instead of waiting for the dead member's session to expire.
            "group.instance.id": instance_id,
            # A writer that stops heartbeating for 10 s hands its partitions to another.
            "session.timeout.ms": 10_000,
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
            "logger": logging.getLogger("librdkafka"),
            **(client_config or {}),
        })
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self.error: BaseException | None = None

    def start(self) -> None:
        self._consumer.subscribe([AUDIT_EVENTS.name], on_assign=self._on_assign, on_revoke=self._on_revoke)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        for partition in partitions:
            state = self.writer.resume(partition.partition)
            partition.offset = state.last_offset + 1 if state.last_offset >= 0 else OFFSET_BEGINNING
        consumer.assign(partitions)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Sign what this writer chained before another writer takes the partition over.
        for partition in partitions:
            self._publish(self.writer.checkpoint(partition.partition, force=True), partition.partition)
            self.writer.chains.pop(partition.partition, None)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._poll_once()
        except BaseException as exc:
            # The worker's health endpoint reports a dead writer; the error is logged here.
            self.error = exc
            log.exception("the audit writer stopped on an error")
        finally:
            if self.error is None:
                # A clean stop signs what is still unsigned, so the trail ends on a
                # checkpoint. It must come first: closing the consumer revokes the chains.
                self._checkpoint(force=True)
            self._consumer.close()
            self.producer.flush()

    def _checkpoint(self, force: bool = False) -> None:
        for chain in list(self.writer.chains):
            self._publish(self.writer.checkpoint(chain, force=force), chain)

    def _publish(self, record: dict[str, object] | None, chain: int) -> None:
        if record is not None:
            self.producer.send(AUDIT_CHECKPOINTS, str(chain), checkpoint_event(record))

    def _poll_once(self) -> None:
        messages = self._consumer.consume(BATCH_MESSAGES, POLL_TIMEOUT_S)
        by_partition: dict[int, list[Input]] = defaultdict(list)
        for message in messages:
            if message.error():
                if message.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("audit consumer error: %s", message.error())
                continue
            _, milliseconds = message.timestamp()
            timestamp = datetime.fromtimestamp(milliseconds / 1000, tz=timezone.utc) if milliseconds > 0 else None
            by_partition[message.partition()].append(
                Input(message.topic(), message.partition(), message.offset(), message.key(), message.value(), timestamp)
            )
        for partition, batch in by_partition.items():
            for letter in self.writer.write(partition, batch):
                self.producer.send(letter.topic, letter.key, letter.event)
        self._checkpoint()
        self.producer.poll()
