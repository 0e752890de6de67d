"""NEWS2 bands at and between the chart's integer edges, partial scores and red flags."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processors.news2 import news2

CASES = [
    # (vital, value, expected score): each chart edge, and a value between two bands.
    ("respiratory_rate", 8, 3), ("respiratory_rate", 8.5, 1), ("respiratory_rate", 11, 1),
    ("respiratory_rate", 12, 0), ("respiratory_rate", 20, 0), ("respiratory_rate", 20.5, 2),
    ("respiratory_rate", 24, 2), ("respiratory_rate", 25, 3),
    ("spo2", 91, 3), ("spo2", 91.5, 2), ("spo2", 93, 2), ("spo2", 94, 1), ("spo2", 95, 1), ("spo2", 96, 0),
    ("systolic_bp", 90, 3), ("systolic_bp", 91, 2), ("systolic_bp", 100, 2), ("systolic_bp", 101, 1),
    ("systolic_bp", 110, 1), ("systolic_bp", 111, 0), ("systolic_bp", 219, 0), ("systolic_bp", 219.5, 3), ("systolic_bp", 220, 3),
    ("heart_rate", 40, 3), ("heart_rate", 41, 1), ("heart_rate", 50, 1), ("heart_rate", 51, 0), ("heart_rate", 90, 0),
    ("heart_rate", 90.5, 1), ("heart_rate", 110, 1), ("heart_rate", 111, 2), ("heart_rate", 130, 2), ("heart_rate", 131, 3),
    ("temperature", 35.0, 3), ("temperature", 35.05, 1), ("temperature", 35.1, 1), ("temperature", 36.0, 1),
    ("temperature", 36.1, 0), ("temperature", 38.0, 0), ("temperature", 38.05, 1), ("temperature", 39.0, 1), ("temperature", 39.1, 2),
]


@pytest.mark.parametrize(("vital", "value", "expected"), CASES)
def test_band_edges(vital: str, value: float, expected: int) -> None:
    assert news2({vital: value}).components[vital] == expected


def test_consciousness_and_oxygen() -> None:
    result = news2({}, consciousness="CVPU", supplemental_oxygen=True)
    assert result.components == {"consciousness": 3, "supplemental_oxygen": 2}
    assert result.total == 5
    assert result.red_flag


def test_missing_parameters_make_partial_score() -> None:
    result = news2({"heart_rate": 80.0, "spo2": None, "temperature": None})
    assert result.parameters == 1
    assert result.partial
    assert result.total == 0


def test_no_parameter_gives_no_total() -> None:
    result = news2({name: None for name in ("heart_rate", "spo2")})
    assert result.total is None
    assert result.partial


def test_complete_score_is_not_partial() -> None:
    result = news2({"respiratory_rate": 16, "spo2": 97, "systolic_bp": 120, "heart_rate": 70, "temperature": 37},
                   consciousness="ALERT", supplemental_oxygen=False)
    assert result.parameters == 7
    assert not result.partial
    assert result.total == 0


measurement = st.one_of(st.none(), st.floats(min_value=0, max_value=300, allow_nan=False))


@given(rr=measurement, spo2=measurement, sbp=measurement, hr=measurement, temp=st.one_of(st.none(), st.floats(25, 45)))
def test_total_is_sum_of_components(rr, spo2, sbp, hr, temp) -> None:
    result = news2({"respiratory_rate": rr, "spo2": spo2, "systolic_bp": sbp, "heart_rate": hr, "temperature": temp})
    present = sum(value is not None for value in (rr, spo2, sbp, hr, temp))
    assert result.parameters == present
    if present:
        assert result.total == sum(result.components.values())
        assert 0 <= result.total <= 15
        assert result.red_flag == (3 in result.components.values())
