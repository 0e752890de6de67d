"""NEWS2, the National Early Warning Score 2 (Royal College of Physicians, 2017).

Seven parameters each score 0-3 and add up to the aggregate: respiratory rate, SpO2
(scale 1), supplemental oxygen, systolic blood pressure, pulse, consciousness and
temperature. The chart gives integer bands (such as pulse 91-110), but measured values
are continuous. Each band here is therefore a half-open interval ``(lower, upper]``
that closes the gaps between the chart's integers. A pulse of 90.5 is above 90 and
scores 1, as any pulse above 90 does on the chart. Rounding first would move such
values into the band below.

When parameters are missing the aggregate covers only those present and is flagged
partial: PhysioNet rows, for example, record neither consciousness nor oxygen.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# (upper bound, score) pairs in ascending order. A value scores the first band whose
# upper bound it does not exceed, and the last band is open above.
RESPIRATORY_RATE_BANDS = ((8.0, 3), (11.0, 1), (20.0, 0), (24.0, 2), (float("inf"), 3))
SPO2_SCALE1_BANDS = ((91.0, 3), (93.0, 2), (95.0, 1), (float("inf"), 0))
SYSTOLIC_BP_BANDS = ((90.0, 3), (100.0, 2), (110.0, 1), (219.0, 0), (float("inf"), 3))
PULSE_BANDS = ((40.0, 3), (50.0, 1), (90.0, 0), (110.0, 1), (130.0, 2), (float("inf"), 3))
TEMPERATURE_BANDS = ((35.0, 3), (36.0, 1), (38.0, 0), (39.0, 1), (float("inf"), 2))

PARAMETER_COUNT = 7


@dataclass(frozen=True)
class News2:
    """A NEWS2 result: aggregate, per-parameter scores and completeness."""

    total: int | None
    components: dict[str, int]

    @property
    def parameters(self) -> int:
        return len(self.components)

    @property
    def partial(self) -> bool:
        return self.parameters < PARAMETER_COUNT

    @property
    def red_flag(self) -> bool:
        """True when any single parameter scores 3, which calls for an urgent review."""
        return any(score == 3 for score in self.components.values())


def band_score(value: float, bands: tuple[tuple[float, int], ...]) -> int:
    """Score ``value`` against ``(upper bound, score)`` bands.

    >>> band_score(90.0, PULSE_BANDS), band_score(90.5, PULSE_BANDS), band_score(131, PULSE_BANDS)
    (0, 1, 3)
    """
    for upper, score in bands:
        if value <= upper:
            return score
    raise ValueError(f"no band for {value}")  # unreachable: the last band is open above


def news2(vitals: Mapping[str, float | None], consciousness: str | None = None, supplemental_oxygen: bool | None = None) -> News2:
    """Compute NEWS2 from the parameters present.

    ``vitals`` uses the bedside event's field names; None means not measured.
    ``consciousness`` is ``"ALERT"`` or ``"CVPU"`` (new confusion, voice, pain, unresponsive).

    >>> full = news2({"respiratory_rate": 22, "spo2": 95, "systolic_bp": 105, "heart_rate": 112,
    ...               "temperature": 38.4}, consciousness="ALERT", supplemental_oxygen=False)
    >>> full.total, full.partial, full.red_flag
    (7, False, False)
    >>> partial = news2({"respiratory_rate": 7.5, "heart_rate": 80, "spo2": None})
    >>> partial.total, partial.parameters, partial.partial, partial.red_flag
    (3, 2, True, True)
    """
    components: dict[str, int] = {}
    measured = {
        "respiratory_rate": RESPIRATORY_RATE_BANDS,
        "spo2": SPO2_SCALE1_BANDS,
        "systolic_bp": SYSTOLIC_BP_BANDS,
        "heart_rate": PULSE_BANDS,
        "temperature": TEMPERATURE_BANDS,
    }
    for name, bands in measured.items():
        value = vitals.get(name)
        if value is not None:
            components[name] = band_score(float(value), bands)
    if supplemental_oxygen is not None:
        components["supplemental_oxygen"] = 2 if supplemental_oxygen else 0
    if consciousness is not None:
        components["consciousness"] = 0 if consciousness == "ALERT" else 3

    total = sum(components.values()) if components else None
    return News2(total=total, components=components)
