"""Produce a stream of timed events at a chosen speed."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime

from streams.producer import EventProducer
from streams.topics import BEDSIDE_VITALS, CLINICAL_OUTCOMES, DEAD_LETTERS_IDENTIFIED, TopicSpec


@dataclass(frozen=True, order=True)
class TimedEvent:
    """One message to produce at event time ``at``; ``order`` breaks ties."""

    at: datetime
    order: tuple[str, int]
    topic: TopicSpec = field(compare=False)
    key: str = field(compare=False)
    value: bytes = field(compare=False)


@dataclass
class FeedStats:
    """Counts of what a feed produced."""

    stays: int = 0
    rows: int = 0
    outcomes: int = 0
    malformed: int = 0
    produced: int = 0


def produce_paced(
    events: Iterable[TimedEvent],
    producer: EventProducer,
    *,
    speed: float | None,
    stats: FeedStats | None = None,
    on_event: Callable[[FeedStats], None] | None = None,
) -> FeedStats:
    """Produce ``events`` in order, ``speed`` event seconds per wall second.

    ``speed=None`` produces as fast as the broker accepts. Raises DeliveryError when the
    broker did not acknowledge every message.
    """
    stats = stats or FeedStats()
    wall_start = time.monotonic()
    first_at: datetime | None = None

    for event in events:
        if speed is not None:
            first_at = first_at or event.at
            delay = wall_start + (event.at - first_at).total_seconds() / speed - time.monotonic()
            if delay > 0:
                time.sleep(delay)

        producer.send(event.topic, event.key, event.value)
        stats.produced += 1
        if event.topic is BEDSIDE_VITALS:
            stats.rows += 1
        elif event.topic is CLINICAL_OUTCOMES:
            stats.outcomes += 1
        elif event.topic is DEAD_LETTERS_IDENTIFIED:
            stats.malformed += 1
        if on_event is not None:
            on_event(stats)

    producer.flush()
    return stats
