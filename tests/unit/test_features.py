"""Event-time features: look-backs, carry-forward, and the state's round trip."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from processors.features import CARRY_FORWARD, NEVER_MEASURED_HOURS, PatientState
from processors.news2 import news2

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


def state_with(heart_rates: dict[int, float]) -> PatientState:
    state = PatientState(first_seen=T0, latest_at=T0, ward="MICU")
    for hour, value in sorted(heart_rates.items()):
        state.update({"heart_rate": value, "spo2": None}, T0 + hour * HOUR)
    return state


def features_at(state: PatientState, hour: float) -> dict[str, float]:
    at = T0 + hour * HOUR
    return state.features(at, news2(state.current(at)), "70-74", "F")


def test_changes_over_one_and_six_hours() -> None:
    state = state_with({0: 70.0, 1: 72.0, 5: 90.0, 6: 100.0, 7: 110.0})
    x = features_at(state, 7)
    assert x["heart_rate"] == 110.0
    assert x["heart_rate_change_1h"] == 10.0
    assert x["heart_rate_change_6h"] == 110.0 - 72.0


def test_rolling_mean_and_spread() -> None:
    x = features_at(state_with({0: 80.0, 1: 90.0, 2: 100.0}), 2)
    assert x["heart_rate_mean_6h"] == pytest.approx(90.0)
    assert x["heart_rate_std_6h"] == pytest.approx(10.0)


def test_missing_vital_is_flagged_and_imputed() -> None:
    x = features_at(state_with({0: 80.0}), 0)
    assert x["spo2_missing"] == 1.0
    assert x["spo2"] == 97.0
    assert x["spo2_age_h"] == NEVER_MEASURED_HOURS
    assert x["heart_rate_missing"] == 0.0


def test_value_expires_after_carry_forward() -> None:
    state = state_with({0: 120.0})
    hours = CARRY_FORWARD / HOUR
    assert features_at(state, hours)["heart_rate_missing"] == 0.0
    expired = features_at(state, hours + 1)
    assert expired["heart_rate_missing"] == 1.0
    assert expired["heart_rate_age_h"] == pytest.approx(hours + 1)


def test_news2_subscores_shock_index_and_stay() -> None:
    state = PatientState(first_seen=T0, latest_at=T0, ward="MICU")
    state.update({"heart_rate": 135.0, "systolic_bp": 90.0, "respiratory_rate": 26.0}, T0 + 10 * HOUR)
    x = features_at(state, 10)
    assert x["news2_heart_rate"] == 3.0
    assert x["news2_respiratory_rate"] == 3.0
    assert x["news2_systolic_bp"] == 3.0  # 90 mmHg or lower
    assert x["shock_index"] == pytest.approx(1.5)
    assert x["hours_in_unit"] == 10.0
    assert x["age"] == 72.0
    assert x["sex_female"] == 1.0


def test_history_stays_bounded() -> None:
    state = state_with({hour: 80.0 + hour for hour in range(200)})
    assert len(state.history["heart_rate"]) <= 8


def test_state_round_trips_through_json() -> None:
    state = state_with({0: 70.0, 3: 90.0, 4: 95.0})
    restored = PatientState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert restored == state
    assert features_at(restored, 5) == features_at(state, 5)
