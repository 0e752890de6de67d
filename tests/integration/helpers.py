"""Small helpers for integration tests: polling, audit SQL and reading topics to the end."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from confluent_kafka import Consumer, Message, TopicPartition

from clinops.worker_client import query_worker

T = TypeVar("T")
# Processing a few thousand events takes seconds here; a minute covers a loaded CI machine.
DEFAULT_TIMEOUT_S = 120.0


def wait_for(read: Callable[[], T], done: Callable[[T], bool], timeout_s: float = DEFAULT_TIMEOUT_S) -> T:
    """Call ``read`` until ``done`` accepts its value; return the last value either way."""
    deadline = time.monotonic() + timeout_s
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.5)
        value = read()
    return value


def audit_rows(port: int, sql: str) -> list[list]:
    return query_worker(port, sql).rows


def read_topic(bootstrap_servers: str, topic: str, timeout_s: float = 30.0) -> list[Message]:
    """Read every message currently in ``topic``, from the beginning to the end offsets."""
    consumer = Consumer({
        "bootstrap.servers": bootstrap_servers,
        "group.id": f"clinops-test-reader-{uuid.uuid4()}",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
    })
    try:
        metadata = consumer.list_topics(topic, timeout=10)
        partitions = list(metadata.topics[topic].partitions)
        ends = {}
        for partition in partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            ends[partition] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
        messages: list[Message] = []
        positions = {p: 0 for p in partitions}
        deadline = time.monotonic() + timeout_s
        while any(positions[p] < ends[p] for p in partitions) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            messages.append(message)
            positions[message.partition()] = message.offset() + 1
        return messages
    finally:
        consumer.close()
