"""Per-patient state in event time and the feature vector the risk models read.

Vital signs arrive sparsely: an hourly PhysioNet row often lacks one or two of them.
The state keeps each vital's observations of the last ``WINDOW`` in event time and
carries the latest value forward for up to ``CARRY_FORWARD``, after which the vital
counts as not measured. The state is a plain dictionary of numbers, so that a Faust
table can keep it in its changelog and a restarted worker computes the same features.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from processors.news2 import News2
from schemas.models import VITAL_NAMES

# Four hours: ICU protocols chart vitals at least every one to four hours, so an older
# value no longer describes the patient. An estimate, not a tuned parameter.
CARRY_FORWARD = timedelta(hours=4)
# The maximum look-back of any feature (the 6-hour change and the rolling statistics).
WINDOW = timedelta(hours=6)
# Hours reported as the age of a vital that was never measured.
NEVER_MEASURED_HOURS = 24.0

# Values used in place of a missing vital in the model's input, so that "not measured"
# reads as unremarkable while its indicator feature marks it missing. Mid-range
# adult values.
NORMAL_VALUES = {
    "heart_rate": 80.0,
    "spo2": 97.0,
    "temperature": 37.0,
    "systolic_bp": 120.0,
    "mean_arterial_pressure": 85.0,
    "diastolic_bp": 70.0,
    "respiratory_rate": 16.0,
    "etco2": 35.0,
}
NEWS2_PARAMETERS = ("respiratory_rate", "spo2", "systolic_bp", "heart_rate", "temperature",
                    "supplemental_oxygen", "consciousness")


def _seconds(at: datetime) -> float:
    return at.timestamp()


@dataclass
class PatientState:
    """Scorer state of one patient: when the stay began, its ward, and recent vitals.

    ``history`` maps a vital to its (epoch seconds, value) observations, oldest first,
    trimmed to ``WINDOW`` plus the newest older one, which the 6-hour change needs.
    """

    first_seen: datetime
    latest_at: datetime
    ward: str
    history: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def update(self, vitals: dict[str, float | None], observed_at: datetime) -> None:
        """Record an in-order observation; the caller treats late ones apart."""
        now = _seconds(observed_at)
        for name, value in vitals.items():
            if value is None:
                continue
            series = self.history.setdefault(name, [])
            series.append((now, float(value)))
            # Keep one observation older than the window as the 6-hour reference.
            cutoff = now - WINDOW.total_seconds()
            while len(series) > 2 and series[1][0] <= cutoff:
                series.pop(0)
        self.latest_at = observed_at

    def current(self, at: datetime) -> dict[str, float | None]:
        """Return each vital's latest value, or None when missing or older than CARRY_FORWARD."""
        now = _seconds(at)
        result: dict[str, float | None] = {}
        for name in VITAL_NAMES:
            series = self.history.get(name)
            fresh = series and now - series[-1][0] <= CARRY_FORWARD.total_seconds()
            result[name] = series[-1][1] if fresh else None
        return result

    def features(self, at: datetime, score: News2, age_band: str | None = None, sex: str | None = None) -> dict[str, float]:
        """Build the model's input at event time ``at`` from the state and the NEWS2 result.

        Per vital: the latest value (a normal value when missing), whether it is
        missing, its age in hours, its change over the last 1 and 6 hours, and the mean
        and standard deviation of the last 6 hours. Then NEWS2 and its sub-scores, the
        shock index, hours in the unit, age and sex.
        """
        now = _seconds(at)
        window = WINDOW.total_seconds()
        carry = CARRY_FORWARD.total_seconds()
        x: dict[str, float] = {}
        for name in VITAL_NAMES:
            series = self.history.get(name)
            latest = series[-1][1] if series and now - series[-1][0] <= carry else None
            x[name] = latest if latest is not None else NORMAL_VALUES[name]
            x[f"{name}_missing"] = 1.0 if latest is None else 0.0
            x[f"{name}_age_h"] = min((now - series[-1][0]) / 3600, NEVER_MEASURED_HOURS) if series else NEVER_MEASURED_HOURS
            # One pass from the newest observation back: the references for the changes,
            # and the sums for the 6-hour mean and spread.
            hour_ago = six_hours_ago = None
            count, total, squares = 0, 0.0, 0.0
            for t, value in reversed(series or ()):
                age = now - t
                if age <= window:
                    count += 1
                    total += value
                    squares += value * value
                if hour_ago is None and age >= 3600.0:
                    hour_ago = value
                if age >= window:
                    six_hours_ago = value
                    break
            x[f"{name}_change_1h"] = latest - hour_ago if latest is not None and hour_ago is not None else 0.0
            x[f"{name}_change_6h"] = latest - six_hours_ago if latest is not None and six_hours_ago is not None else 0.0
            x[f"{name}_mean_6h"] = total / count if count else x[name]
            x[f"{name}_std_6h"] = math.sqrt(max(squares - total * total / count, 0.0) / (count - 1)) if count > 1 else 0.0
        x["news2"] = float(score.total) if score.total is not None else 0.0
        for parameter in NEWS2_PARAMETERS:
            x[f"news2_{parameter}"] = float(score.components.get(parameter, 0))
        x["shock_index"] = x["heart_rate"] / max(x["systolic_bp"], 1.0)
        x["hours_in_unit"] = (now - _seconds(self.first_seen)) / 3600
        x["age"] = age_from_band(age_band)
        x["sex_female"] = 1.0 if sex == "F" else 0.0
        return x

    def to_dict(self) -> dict:
        """Return the state as JSON-compatible data, for a Faust table."""
        return {
            "first_seen": _seconds(self.first_seen), "latest_at": _seconds(self.latest_at), "ward": self.ward,
            "history": {name: [list(point) for point in series] for name, series in self.history.items()},
        }

    @classmethod
    def from_dict(cls, data: dict) -> PatientState:
        return cls(
            first_seen=datetime.fromtimestamp(data["first_seen"], timezone.utc),
            latest_at=datetime.fromtimestamp(data["latest_at"], timezone.utc),
            ward=data["ward"],
            history={name: [(point[0], point[1]) for point in series] for name, series in data["history"].items()},
        )


def age_from_band(band: str | None) -> float:
    """Return the middle of a five-year age band, 92 for 90+, and 60 when unknown.

    >>> age_from_band("70-74"), age_from_band("90+"), age_from_band(None)
    (72.0, 92.0, 60.0)
    """
    if band is None:
        return 60.0
    if band.endswith("+"):
        return float(band[:-1]) + 2
    low, high = band.split("-")
    return (float(low) + float(high)) / 2
