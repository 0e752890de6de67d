"""Alert explanations: the vital signs behind an alert, in the words a nurse would chart.

Each alert names up to ``TOP`` vital signs that drive it. A vital sign's weight is the
sum of two parts:

- its NEWS2 sub-score, the part of the clinical score it explains;
- when the model has a risk, ten times how far the risk falls when that vital sign's
  features are replaced by a normal, steady value. A drop of 0.1 in probability thus
  weighs as much as one NEWS2 point.

The wording states the value and its 6-hour trend, such as "respiratory rate 28/min,
up 8/min in 6 h". The explanation is descriptive: a large weight means that the score
moved with that vital sign, not that the vital sign caused the deterioration.
"""

from __future__ import annotations

from collections.abc import Callable

from processors.features import NORMAL_VALUES

TOP = 3
CHANGE_UNITS = {"spo2": " points"}
# Display name, unit, and the smallest 6-hour change worth saying aloud. SpO2 changes
# are in percentage points, so CHANGE_UNITS names that unit in place of "%".
WORDS: dict[str, tuple[str, str, float]] = {
    "heart_rate": ("heart rate", "/min", 10.0),
    "respiratory_rate": ("respiratory rate", "/min", 4.0),
    "spo2": ("SpO2", "%", 2.0),
    "temperature": ("temperature", " °C", 0.5),
    "systolic_bp": ("systolic BP", " mmHg", 15.0),
    "mean_arterial_pressure": ("MAP", " mmHg", 10.0),
    "diastolic_bp": ("diastolic BP", " mmHg", 10.0),
    "etco2": ("EtCO2", " mmHg", 5.0),
}


def neutralized(x: dict[str, float], vital: str) -> dict[str, float]:
    """Return the features with one vital sign normal, measured and steady."""
    normal = NORMAL_VALUES[vital]
    steady = dict(x)
    steady.update({
        vital: normal, f"{vital}_missing": 0.0, f"{vital}_change_1h": 0.0, f"{vital}_change_6h": 0.0,
        f"{vital}_mean_6h": normal, f"{vital}_std_6h": 0.0,
    })
    if vital in ("heart_rate", "systolic_bp"):
        steady["shock_index"] = steady["heart_rate"] / max(steady["systolic_bp"], 1.0)
    return steady


def describe(x: dict[str, float], vital: str) -> str:
    """Word one vital sign's latest value and, when it moved enough, its 6-hour change.

    >>> describe({"respiratory_rate": 28.0, "respiratory_rate_change_6h": 8.0}, "respiratory_rate")
    'respiratory rate 28/min, up 8/min in 6 h'
    >>> describe({"spo2": 95.0, "spo2_change_6h": -1.0}, "spo2")
    'SpO2 95%'
    >>> describe({"spo2": 88.0, "spo2_change_6h": -9.0}, "spo2")
    'SpO2 88%, down 9 points in 6 h'
    """
    name, unit, minimum_change = WORDS[vital]
    value = x[vital]
    text = f"{name} {value:g}{unit}"
    change = x.get(f"{vital}_change_6h", 0.0)
    if abs(change) >= minimum_change:
        text += f", {'up' if change > 0 else 'down'} {abs(change):g}{CHANGE_UNITS.get(vital, unit)} in 6 h"
    return text


def explain(x: dict[str, float], model_risk: float | None, predict: Callable[[dict[str, float]], float | None]) -> list[str]:
    """Return up to ``TOP`` clinical phrases for the vital signs that weigh most in the alert.

    ``x`` contains the model's features, ``model_risk`` the model's risk for them (None
    before the model is ready), and ``predict`` scores other features without learning.
    Vital signs that were not measured are left out.
    """
    weights: list[tuple[float, str]] = []
    for vital in WORDS:
        if x.get(f"{vital}_missing", 1.0) == 1.0:
            continue
        weight = x.get(f"news2_{vital}", 0.0)
        if model_risk is not None:
            steady_risk = predict(neutralized(x, vital))
            if steady_risk is not None:
                weight += 10.0 * max(model_risk - steady_risk, 0.0)
        if weight > 0:
            weights.append((weight, vital))
    weights.sort(key=lambda pair: (-pair[0], pair[1]))
    return [describe(x, vital) for _, vital in weights[:TOP]]
