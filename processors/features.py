"""Per-patient state and the feature vector the risk model reads.

Vital signs arrive sparsely: an hourly PhysioNet row often lacks one or two of them.
The state carries each vital's latest value forward for up to ``CARRY_FORWARD``, after
which it counts as not measured again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from schemas.models import VITAL_NAMES

# Four hours: ICU protocols chart vitals at least every one to four hours, so an older
# value no longer describes the patient. An estimate, not a tuned parameter.
CARRY_FORWARD = timedelta(hours=4)

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


@dataclass
class PatientState:
    """Scorer state of one patient between observations."""

    first_seen: datetime
    latest_at: datetime
    ward: str
    values: dict[str, tuple[float, datetime]] = field(default_factory=dict)
    previous: dict[str, float] = field(default_factory=dict)

    def update(self, vitals: dict[str, float | None], observed_at: datetime) -> None:
        """Record an in-order observation; the caller rejects late ones first."""
        for name, value in vitals.items():
            if value is None:
                continue
            if name in self.values:
                self.previous[name] = self.values[name][0]
            self.values[name] = (value, observed_at)
        self.latest_at = observed_at

    def current(self, at: datetime) -> dict[str, float | None]:
        """Return each vital's latest value, or None when missing or older than CARRY_FORWARD."""
        result: dict[str, float | None] = {}
        for name in VITAL_NAMES:
            entry = self.values.get(name)
            result[name] = entry[0] if entry is not None and at - entry[1] <= CARRY_FORWARD else None
        return result


def feature_vector(vitals: dict[str, float | None], previous: dict[str, float], news2_total: int | None, hours_in_unit: float) -> dict[str, float]:
    """Build the model's input: imputed vitals, missing flags, changes, NEWS2 and shock index.

    >>> x = feature_vector({"heart_rate": 110.0, "systolic_bp": 88.0}, {"heart_rate": 90.0}, 6, 12.0)
    >>> x["heart_rate"], x["heart_rate_change"], x["spo2_missing"], round(x["shock_index"], 2)
    (110.0, 20.0, 1.0, 1.25)
    """
    x: dict[str, float] = {}
    for name in VITAL_NAMES:
        value = vitals.get(name)
        x[name] = value if value is not None else NORMAL_VALUES[name]
        x[f"{name}_missing"] = 1.0 if value is None else 0.0
        before = previous.get(name)
        x[f"{name}_change"] = value - before if value is not None and before is not None else 0.0
    x["news2"] = float(news2_total) if news2_total is not None else 0.0
    x["shock_index"] = x["heart_rate"] / max(x["systolic_bp"], 1.0)
    x["hours_in_unit"] = hours_in_unit
    return x
