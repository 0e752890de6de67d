"""Stage inputs and outputs, independent of Faust, so that stages are testable alone."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime

from pydantic import ValidationError

from schemas.errors import DecodeError
from schemas.models import VITAL_NAMES, Event
from streams.records import dead_letter, rejection_audit
from streams.topics import AUDIT_EVENTS, DEAD_LETTERS, TopicSpec

RANGE_ERRORS = {"greater_than_equal", "less_than_equal", "greater_than", "less_than"}


@dataclass(frozen=True)
class Input:
    """One consumed message and where it came from."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    timestamp: datetime | None = None  # when the message entered Kafka (its CreateTime)


@dataclass(frozen=True)
class Output:
    """One event to produce; the Faust codec or ``value`` encodes it."""

    topic: TopicSpec
    key: str
    event: Event
    # None lets the key choose the partition.
    partition: int | None = None

    @classmethod
    def of(cls, topic: TopicSpec, key: str, event: Event, partition: int | None = None) -> Output:
        return cls(topic, key, event, partition)

    @property
    def value(self) -> bytes:
        return self.event.to_avro()


class RejectionLog:
    """Log rejected inputs, at most ``burst`` lines per ``period_s``, then how many were left out.

    A feed that sends only bad input would otherwise write one line per message.
    """

    def __init__(self, logger: logging.Logger, burst: int = 20, period_s: float = 60.0) -> None:
        self.logger = logger
        self.burst = burst
        self.period_s = period_s
        self._window_start = time.monotonic()
        self._logged = 0
        self._suppressed = 0

    def warning(self, message: Input, reason: str) -> None:
        """Log one rejection by its topic position (never its key, which may identify a patient)."""
        now = time.monotonic()
        if now - self._window_start >= self.period_s:
            if self._suppressed:
                self.logger.warning("%d more inputs were rejected in the last %.0f s without a log line each",
                                    self._suppressed, now - self._window_start)
            self._window_start, self._logged, self._suppressed = now, 0, 0
        if self._logged < self.burst:
            self._logged += 1
            self.logger.warning("rejected %s/%d/%d: %s", message.topic, message.partition, message.offset, reason)
        else:
            self._suppressed += 1


def describe_validation_error(error: ValidationError) -> tuple[str, str]:
    """Return (error type, reason) for a rejected event, naming fields but never echoing
    an identifier's value: only vital sign values are quoted."""
    parts = []
    all_ranges = True
    for item in error.errors(include_input=False, include_url=False):
        field_name = ".".join(str(part) for part in item["loc"])
        reason = f"{field_name}: {item['msg']}"
        if item["loc"] and item["loc"][0] in VITAL_NAMES and item["type"] in RANGE_ERRORS:
            reason += f" (got {_vital_input(error, item['loc'][0])})"
        else:
            all_ranges = False
        parts.append(reason)
    return ("implausible_value" if all_ranges else "validation"), "; ".join(parts)


def _vital_input(error: ValidationError, name: str) -> object:
    for item in error.errors(include_url=False):
        if item["loc"] and item["loc"][0] == name:
            return item.get("input")
    return "?"


def reject(stage: str, message: Input, exc: ValueError, dead_letters: TopicSpec = DEAD_LETTERS) -> list[Output]:
    """Build the dead letter and the ``input.rejected`` audit event for a bad input.

    ``exc`` is a DecodeError, a pydantic ValidationError, or a ValueError whose message
    names no identifier's value. A stage that reads identified topics passes their
    restricted dead-letter topic as ``dead_letters``.
    """
    if isinstance(exc, ValidationError):
        error_type, reason = describe_validation_error(exc)
    elif isinstance(exc, DecodeError):
        error_type, reason = "decode", str(exc)
    else:
        error_type, reason = getattr(exc, "error_type", "validation"), str(exc)
    letter = dead_letter(
        stage=stage, topic=message.topic, partition=message.partition, offset=message.offset,
        error_type=error_type, reason=reason, payload=message.value,
    )
    # A rejected input's own event time may be unreadable, so its audit event is dated
    # by the time the input entered Kafka, or by the rejection when that is unknown.
    audit = rejection_audit(letter, occurred_at=message.timestamp)
    return [Output.of(dead_letters, stage, letter), Output.of(AUDIT_EVENTS, audit.subject_id, audit)]
