"""Alert explanations: ranking by NEWS2 sub-score and model sensitivity, clinical wording."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from processors.explanations import explain, neutralized
from processors.features import PatientState
from processors.news2 import news2

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


def features_after(hours: list[dict[str, float]]) -> dict[str, float]:
    state = PatientState(first_seen=T0, latest_at=T0, ward="MICU")
    for index, vitals in enumerate(hours):
        state.update(vitals, T0 + index * HOUR)
    at = T0 + (len(hours) - 1) * HOUR
    return state.features(at, news2(state.current(at)))


def test_news2_subscores_rank_without_model() -> None:
    x = features_after([{"respiratory_rate": 18.0, "heart_rate": 95.0, "spo2": 97.0}] * 6
                       + [{"respiratory_rate": 26.0, "heart_rate": 95.0, "spo2": 97.0}])
    phrases = explain(x, None, lambda features: None)
    assert phrases[0] == "respiratory rate 26/min, up 8/min in 6 h"
    assert phrases[1] == "heart rate 95/min"
    assert len(phrases) == 2  # SpO2 97% scores 0 in NEWS2 and nothing in a missing model


def test_model_sensitivity_can_lead() -> None:
    x = features_after([{"heart_rate": 80.0, "mean_arterial_pressure": 85.0}] * 6
                       + [{"heart_rate": 80.0, "mean_arterial_pressure": 58.0}])

    def predict(features: dict[str, float]) -> float:
        return 0.9 if features["mean_arterial_pressure"] < 65 else 0.2

    phrases = explain(x, 0.9, predict)
    assert phrases[0] == "MAP 58 mmHg, down 27 mmHg in 6 h"


def test_unmeasured_vital_is_never_named() -> None:
    x = features_after([{"heart_rate": 130.0}])
    phrases = explain(x, 0.8, lambda features: 0.1)
    assert all(not phrase.startswith("temperature") for phrase in phrases)
    assert phrases[0].startswith("heart rate 130/min")


def test_neutralized_vital_is_normal_and_steady() -> None:
    x = features_after([{"heart_rate": 80.0}, {"heart_rate": 140.0}])
    steady = neutralized(x, "heart_rate")
    assert steady["heart_rate"] == 80.0
    assert steady["heart_rate_change_1h"] == 0.0
    assert steady["heart_rate_std_6h"] == 0.0
    assert x["heart_rate"] == 140.0  # the original is unchanged
