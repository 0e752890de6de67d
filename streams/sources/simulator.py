"""Simulated bedside monitors: live vital signs for N patients, some deteriorating.

A stable patient's vitals wander around a personal baseline. A deteriorating patient
follows the pattern of early sepsis over six hours from a hidden onset. Heart rate and
respiratory rate rise, blood pressure and SpO2 fall, and fever develops. Late in the
course the patient may become confused and need oxygen. The simulator reports the
onset as a clinical outcome one hour after it happens, as an EHR would.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.codec import registry
from streams.sources.identities import monitor_serial, synthesize_identity
from streams.sources.pacing import TimedEvent
from streams.topics import BEDSIDE_VITALS, CLINICAL_OUTCOMES

SOURCE = "simulator"
SIMULATOR_NAMESPACE = uuid.UUID("5d4c3b2a-1f0e-5d9c-8b7a-6f5e4d3c2b1a")
WARDS = ("MICU", "SICU", "CCU")
# Full effect of deterioration on each vital, reached six hours after onset.
DETERIORATION = {
    "heart_rate": 38.0,
    "respiratory_rate": 11.0,
    "systolic_bp": -38.0,
    "mean_arterial_pressure": -25.0,
    "diastolic_bp": -18.0,
    "spo2": -7.0,
    "temperature": 1.9,
}
DETERIORATION_HOURS = 6.0
# Each vital is missing from an observation with this probability, as on a real ward
# where a probe slips or a cuff is not cycled.
MISSING_PROBABILITY = 0.05


@dataclass
class SimulatedPatient:
    stay_id: str
    ward: str
    sex: str
    age: int
    baseline: dict[str, float]
    onset_hour: float | None


def simulated_stay_id(run_id: str, index: int) -> str:
    return f"sim-{run_id}-{index:04d}"


def simulated_monitors(count: int, seed: int) -> list[str]:
    """Return the serials of the monitors that ``simulated_events`` with the same count and seed uses."""
    return [monitor_serial(simulated_stay_id(str(seed), i)) for i in range(count)]


def make_patients(count: int, deteriorating_fraction: float, hours: float, rng: random.Random, run_id: str) -> list[SimulatedPatient]:
    patients = []
    for i in range(count):
        deteriorating = rng.random() < deteriorating_fraction
        patients.append(
            SimulatedPatient(
                stay_id=simulated_stay_id(run_id, i),
                ward=rng.choice(WARDS),
                sex=rng.choice("FM"),
                age=rng.randint(25, 92),
                baseline={
                    "heart_rate": rng.gauss(78, 8),
                    "spo2": min(99.5, rng.gauss(97, 1.2)),
                    "temperature": rng.gauss(36.8, 0.25),
                    "systolic_bp": rng.gauss(125, 12),
                    "mean_arterial_pressure": rng.gauss(90, 8),
                    "diastolic_bp": rng.gauss(72, 7),
                    "respiratory_rate": rng.gauss(16, 1.8),
                },
                onset_hour=rng.uniform(1.0, max(1.0, hours - 2.0)) if deteriorating else None,
            )
        )
    return patients


def _vitals(patient: SimulatedPatient, hour: float, rng: random.Random) -> dict[str, object]:
    progress = 0.0
    if patient.onset_hour is not None and hour > patient.onset_hour:
        progress = min(1.0, (hour - patient.onset_hour) / DETERIORATION_HOURS)
    vitals: dict[str, object] = {}
    for name, base in patient.baseline.items():
        value = base + DETERIORATION.get(name, 0.0) * progress + rng.gauss(0, 0.04 * abs(base) if name != "temperature" else 0.15)
        if name == "spo2":
            value = min(100.0, value)
        vitals[name] = None if rng.random() < MISSING_PROBABILITY else round(value, 1)
    vitals["etco2"] = None
    vitals["consciousness"] = "CVPU" if progress > 0.8 and rng.random() < 0.5 else "ALERT"
    vitals["supplemental_oxygen"] = progress > 0.6
    return vitals


def simulated_events(
    count: int, *, hours: float, interval_minutes: float, start: datetime, seed: int, deteriorating_fraction: float = 0.3
) -> Iterator[TimedEvent]:
    """Yield every patient's observations and outcomes in event-time order."""
    rng = random.Random(seed)
    run_id = f"{seed}"
    patients = make_patients(count, deteriorating_fraction, hours, rng, run_id)
    identities = {p.stay_id: synthesize_identity(p.stay_id, p.sex, p.age, start, p.ward) for p in patients}
    reported: set[str] = set()
    steps = int(hours * 60 / interval_minutes)

    for step in range(steps + 1):
        hour = step * interval_minutes / 60
        observed_at = start + timedelta(minutes=step * interval_minutes)
        for patient in patients:
            identity = identities[patient.stay_id]
            record = {
                "event_id": uuid.uuid5(SIMULATOR_NAMESPACE, f"{patient.stay_id}|{step}"),
                "source": SOURCE,
                "record_number": identity.record_number,
                "patient_name": identity.name,
                "birth_date": identity.birth_date,
                "sex": patient.sex,
                "ward": patient.ward,
                "bed": identity.bed,
                "device_id": identity.device_id,
                "observed_at": observed_at,
                **_vitals(patient, hour, rng),
            }
            yield TimedEvent(observed_at, (patient.stay_id, step), BEDSIDE_VITALS, identity.record_number,
                             registry.encode(BEDSIDE_VITALS.schema, record))

            onset = patient.onset_hour
            final_step = step == steps
            if (onset is not None and hour >= onset + 1.0 and patient.stay_id not in reported) or final_step:
                outcome = "DISCHARGE" if final_step else "SEPSIS_ONSET"
                reported.add(patient.stay_id)
                occurred_at = observed_at if final_step else start + timedelta(hours=onset)
                value = registry.encode(CLINICAL_OUTCOMES.schema, {
                    "event_id": uuid.uuid5(SIMULATOR_NAMESPACE, f"{patient.stay_id}|{outcome}"),
                    "source": SOURCE,
                    "record_number": identity.record_number,
                    "outcome": outcome,
                    "occurred_at": occurred_at,
                })
                yield TimedEvent(observed_at, (patient.stay_id, step), CLINICAL_OUTCOMES, identity.record_number, value)
