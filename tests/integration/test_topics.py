"""Topic creation on the real broker: the identified retention setting."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

from streams.topics import HOUR_MS, TopicSpec, create_topics

pytestmark = pytest.mark.integration


def retention_ms(bootstrap_servers: str, topic: str) -> int:
    admin = AdminClient({"bootstrap.servers": bootstrap_servers})
    (future,) = admin.describe_configs([ConfigResource(ResourceType.TOPIC, topic)]).values()
    return int(future.result(30)["retention.ms"].value)


def test_identified_retention_applies_to_new_and_existing(bootstrap_servers: str) -> None:
    identified = TopicSpec(f"test.identified.{uuid.uuid4().hex[:8]}", 1, 24 * HOUR_MS, "k", "bedside_vitals", "test",
                           identified=True)
    other = TopicSpec(f"test.other.{uuid.uuid4().hex[:8]}", 1, 24 * HOUR_MS, "k", "risk_score", "test")

    created = create_topics(bootstrap_servers, (identified, other), identified_retention_ms=2 * HOUR_MS)
    assert sorted(created) == sorted([identified.name, other.name])
    assert retention_ms(bootstrap_servers, identified.name) == 2 * HOUR_MS
    assert retention_ms(bootstrap_servers, other.name) == 24 * HOUR_MS

    # A changed setting reaches the existing identified topic at the next start.
    assert create_topics(bootstrap_servers, (identified, other), identified_retention_ms=6 * HOUR_MS) == []
    assert retention_ms(bootstrap_servers, identified.name) == 6 * HOUR_MS
    assert retention_ms(bootstrap_servers, other.name) == 24 * HOUR_MS
