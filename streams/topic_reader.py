"""Read a topic from its beginning to its current end, for scans, tests and benchmarks."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Mapping

from confluent_kafka import Consumer, Message, TopicPartition

from schemas.errors import ClinopsError


class TopicReadError(ClinopsError):
    """A topic could not be read, for example because the user may not read it."""


def read_topic(
    bootstrap_servers: str, topic: str, timeout_s: float = 120.0, client_config: Mapping[str, str] | None = None,
) -> list[Message]:
    """Return every message in ``topic`` up to the end offsets at the time of the call.

    ``client_config`` adds librdkafka settings such as SASL credentials. Raises
    TopicReadError when the topic is missing or not authorized, and TimeoutError when
    the end is not reached within ``timeout_s``.
    """
    consumer = Consumer({
        "bootstrap.servers": bootstrap_servers,
        "group.id": f"clinops-reader-{uuid.uuid4()}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "logger": logging.getLogger("librdkafka"),
        **(client_config or {}),
    })
    try:
        metadata = consumer.list_topics(topic, timeout=10).topics[topic]
        if metadata.error is not None:
            raise TopicReadError(f"cannot read {topic}: {metadata.error.str()}")
        partitions = list(metadata.partitions)
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in partitions}
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        messages: list[Message] = []
        positions = {p: 0 for p in partitions}
        deadline = time.monotonic() + timeout_s
        while any(positions[p] < ends[p] for p in partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {topic} did not reach its end within {timeout_s:.0f} s")
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            messages.append(message)
            positions[message.partition()] = message.offset() + 1
        return messages
    finally:
        consumer.close()
