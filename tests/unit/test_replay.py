"""Replay events: event-time order, deterministic identities, outcomes and dead letters."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

from schemas.codec import registry
from schemas.models import AuditEvent, DeadLetter
from streams.sources.physionet import parse_stay
from streams.sources.replay import admission_time, load_stays, merged_events, stay_events
from streams.topics import AUDIT_EVENTS, BEDSIDE_VITALS, CLINICAL_OUTCOMES, DEAD_LETTERS_IDENTIFIED

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_merged_events_are_in_event_time_order(sample_dir: Path) -> None:
    stays = load_stays(sorted(sample_dir.glob("*.psv"))[:8])
    events = list(merged_events(stays, START, "run"))
    times = [event.at for event in events]
    assert times == sorted(times)
    assert len({event.key for event in events}) == 8
    assert sum(event.topic is BEDSIDE_VITALS for event in events) == sum(len(s.rows) for s in stays)


def test_replay_is_deterministic(sample_dir: Path) -> None:
    stay = parse_stay(sample_dir / "p100001.psv")
    first = [event.value for event in stay_events(stay, START, "run")]
    second = [event.value for event in stay_events(stay, START, "run")]
    other_run = [event.value for event in stay_events(stay, START, "other")]
    assert first == second
    assert first != other_run


def test_vitals_carry_identity_and_hour(sample_dir: Path) -> None:
    stay = parse_stay(sample_dir / "p100001.psv")
    events = [e for e in stay_events(stay, START, "run") if e.topic is BEDSIDE_VITALS]
    _, record = registry.decode(events[0].value, "bedside_vitals")
    assert record["record_number"] == events[0].key
    assert record["patient_name"]
    assert record["observed_at"] == admission_time(stay.stay_id, START) + timedelta(hours=stay.rows[0].icu_hour)
    assert record["heart_rate"] == stay.rows[0].vitals["heart_rate"]


def test_septic_stay_emits_onset_then_discharge(sample_dir: Path) -> None:
    septic = next(s for s in load_stays(sorted(sample_dir.glob("*.psv"))) if s.onset_hour is not None)
    outcomes = [registry.decode(e.value)[1] for e in stay_events(septic, START, "run") if e.topic is CLINICAL_OUTCOMES]
    assert [o["outcome"] for o in outcomes] == ["SEPSIS_ONSET", "DISCHARGE"]
    admitted = admission_time(septic.stay_id, START)
    assert outcomes[0]["occurred_at"] == admitted + timedelta(hours=septic.onset_hour)


def test_malformed_row_becomes_dead_letter_and_audit(tmp_path: Path, sample_dir: Path) -> None:
    lines = (sample_dir / "p100001.psv").read_text().splitlines()
    lines.insert(3, "not|a|row")
    (tmp_path / "p100001.psv").write_text("\n".join(lines) + "\n")
    events = stay_events(parse_stay(tmp_path / "p100001.psv"), START, "run")

    letters = [DeadLetter.from_avro(e.value) for e in events if e.topic is DEAD_LETTERS_IDENTIFIED]
    audits = [AuditEvent.from_avro(e.value) for e in events if e.topic is AUDIT_EVENTS]
    assert len(letters) == 1
    assert letters[0].stage == "replay"
    assert letters[0].offset == 4
    assert letters[0].payload == b"not|a|row"
    assert len(audits) == 1
    assert audits[0].action == "input.rejected"
    assert str(letters[0].event_id) in audits[0].details
