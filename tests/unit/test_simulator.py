"""The bedside simulator: determinism, deterioration, outcomes."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timezone

from processors.news2 import news2
from schemas.codec import registry
from schemas.models import BedsideVitals
from streams.sources.simulator import simulated_events
from streams.topics import BEDSIDE_VITALS, CLINICAL_OUTCOMES

START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def run(seed: int = 7, patients: int = 30):
    return list(simulated_events(patients, hours=12, interval_minutes=30, start=START, seed=seed))


def test_same_seed_same_events() -> None:
    assert [e.value for e in run()] == [e.value for e in run()]
    assert [e.value for e in run()] != [e.value for e in run(seed=8)]


def test_events_validate_and_are_in_time_order() -> None:
    events = run()
    assert [e.at for e in events] == sorted(e.at for e in events)
    vitals = [BedsideVitals.from_avro(e.value) for e in events if e.topic is BEDSIDE_VITALS]
    assert len(vitals) == 30 * 25


def test_deteriorating_patients_score_higher_and_report_onset() -> None:
    events = run()
    onsets = {e.key for e in events if e.topic is CLINICAL_OUTCOMES and registry.decode(e.value)[1]["outcome"] == "SEPSIS_ONSET"}
    discharges = [e for e in events if e.topic is CLINICAL_OUTCOMES and registry.decode(e.value)[1]["outcome"] == "DISCHARGE"]
    assert onsets, "no patient deteriorated"
    assert len(discharges) == 30

    final_scores = defaultdict(int)
    for event in events:
        if event.topic is BEDSIDE_VITALS:
            vitals = BedsideVitals.from_avro(event.value)
            consciousness = vitals.consciousness.value if vitals.consciousness else None
            final_scores[event.key] = news2(vitals.vitals(), consciousness, vitals.supplemental_oxygen).total or 0
    deteriorated = [final_scores[key] for key in onsets]
    stable = [score for key, score in final_scores.items() if key not in onsets]
    assert min(deteriorated) > max(stable) - 3
    assert sum(deteriorated) / len(deteriorated) >= 5
    assert sum(stable) / len(stable) < 3
