"""Replay PhysioNet 2019 stays as bedside events, in event-time order.

Each stay is admitted at ``start`` plus a per-stay offset of 0 to ``admission_hours - 1``
hours (derived from its id; 24 by default, so a sample fills a ward within a day), and
each hourly row becomes one identified bedside vitals event observed at
admission + ICULOS hours. The sepsis onset (six hours after SepsisLabel first turns 1)
becomes a clinical outcome at the hour it happens, and every stay ends with a
discharge outcome one hour after its last row. All stays are merged into one stream
ordered by event time.
"""

from __future__ import annotations

import hashlib
import heapq
import uuid
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path

from schemas.codec import registry
from streams.producer import EventProducer
from streams.records import dead_letter, rejection_audit
from streams.sources.identities import monitor_serial, synthesize_identity
from streams.sources.pacing import FeedStats, TimedEvent, produce_paced
from streams.sources.physionet import Stay, parse_stay
from streams.topics import AUDIT_EVENTS, BEDSIDE_VITALS, CLINICAL_OUTCOMES, DEAD_LETTERS_IDENTIFIED

SOURCE = "physionet-replay"
REPLAY_NAMESPACE = uuid.UUID("0b6a8f3e-1c2d-5e4f-9a8b-7c6d5e4f3a2b")
ADMISSION_HOURS = 24


def admission_time(stay_id: str, start: datetime, admission_hours: int = ADMISSION_HOURS) -> datetime:
    """Spread admissions over ``admission_hours`` so that replayed stays overlap like a real ward."""
    offset = int.from_bytes(hashlib.sha256(f"admission:{stay_id}".encode()).digest()[:4], "big") % admission_hours
    return start + timedelta(hours=offset)


def stay_events(stay: Stay, start: datetime, run_id: str, admission_hours: int = ADMISSION_HOURS) -> list[TimedEvent]:
    """Build every message of one stay, sorted by event time."""
    admitted_at = admission_time(stay.stay_id, start, admission_hours)
    identity = synthesize_identity(stay.stay_id, stay.sex, stay.age, admitted_at, stay.unit)
    events: list[TimedEvent] = []

    def event_id(kind: str, hour: int) -> uuid.UUID:
        return uuid.uuid5(REPLAY_NAMESPACE, f"{run_id}|{stay.stay_id}|{kind}|{hour}")

    for row in stay.rows:
        observed_at = admitted_at + timedelta(hours=row.icu_hour)
        # Encoded straight from the row without validation, as a monitor would send it:
        # implausible values are the pseudonymizer's to reject.
        record = {
            "event_id": event_id("vitals", row.icu_hour),
            "source": SOURCE,
            "record_number": identity.record_number,
            "patient_name": identity.name,
            "birth_date": identity.birth_date,
            "sex": stay.sex,
            "ward": stay.unit,
            "bed": identity.bed,
            "device_id": identity.device_id,
            "observed_at": observed_at,
            **row.vitals,
        }
        value = registry.encode(BEDSIDE_VITALS.schema, record)
        events.append(TimedEvent(observed_at, (stay.stay_id, row.line), BEDSIDE_VITALS, identity.record_number, value))

    onset = stay.onset_hour
    last_hour = stay.last_hour
    outcomes = [("DISCHARGE", max(last_hour, onset or 0) + 1)]
    if onset is not None:
        outcomes.insert(0, ("SEPSIS_ONSET", onset))
    for outcome, hour in outcomes:
        occurred_at = admitted_at + timedelta(hours=hour)
        value = registry.encode(
            CLINICAL_OUTCOMES.schema,
            {
                "event_id": event_id(outcome, hour),
                "source": SOURCE,
                "record_number": identity.record_number,
                "outcome": outcome,
                "occurred_at": occurred_at,
            },
        )
        # Sort an outcome after the vitals of the same hour: a label becomes known at
        # the end of the hour it describes.
        events.append(TimedEvent(occurred_at, (stay.stay_id, 10**9 + hour), CLINICAL_OUTCOMES, identity.record_number, value))

    for row in stay.malformed:
        letter = dead_letter(
            stage="replay", topic=f"physionet/{stay.stay_id}.psv", partition=0, offset=row.line,
            error_type="malformed_row", reason=row.reason, payload=row.text.encode(),
        )
        key = f"replay/{stay.stay_id}"
        events.append(TimedEvent(admitted_at, (stay.stay_id, -row.line), DEAD_LETTERS_IDENTIFIED, key, letter.to_avro()))
        audit = rejection_audit(letter, occurred_at=admitted_at)
        events.append(TimedEvent(admitted_at, (stay.stay_id, -row.line), AUDIT_EVENTS, key, audit.to_avro()))

    events.sort()
    return events


def merged_events(stays: Iterable[Stay], start: datetime, run_id: str,
                  admission_hours: int = ADMISSION_HOURS) -> Iterator[TimedEvent]:
    """Merge the stays' messages into one stream in event-time order."""
    return heapq.merge(*(stay_events(stay, start, run_id, admission_hours) for stay in stays))


def replayed_monitors(stays: Iterable[Stay]) -> list[str]:
    """Return the serials of the monitors that the replay of ``stays`` sends from."""
    return [monitor_serial(stay.stay_id) for stay in stays]


def load_stays(paths: Iterable[Path]) -> list[Stay]:
    return [parse_stay(path) for path in paths]


def replay(
    stays: list[Stay],
    producer: EventProducer,
    *,
    speed: float | None,
    start: datetime,
    run_id: str,
    on_event: Callable[[FeedStats], None] | None = None,
    admission_hours: int = ADMISSION_HOURS,
) -> FeedStats:
    """Produce the stays' messages, paced by ``speed`` (None: as fast as possible)."""
    if start.tzinfo is None:
        raise ValueError("start must be timezone-aware (UTC), not a naive datetime")
    events = merged_events(stays, start, run_id, admission_hours)
    return produce_paced(events, producer, speed=speed, stats=FeedStats(stays=len(stays)), on_event=on_event)


def default_start() -> datetime:
    """Return the current hour in UTC, so that a new replay sorts after earlier ones."""
    return datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
