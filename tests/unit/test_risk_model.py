"""The online model: prediction must not move its state."""

from __future__ import annotations

import pickle
import random

import pytest

from processors.risk_model import MODEL_SPECS, RiskModel


def trained_model() -> RiskModel:
    rng = random.Random(7)
    model = RiskModel(warmup_labels=20)
    for _ in range(60):
        heart_rate = rng.gauss(90, 15)
        model.learn({"heart_rate": heart_rate, "spo2": rng.gauss(96, 2)}, heart_rate > 100)
    return model


def test_predict_leaves_model_unchanged() -> None:
    model = trained_model()
    before = pickle.dumps(model)
    for value in (40.0, 200.0, 95.0):
        assert model.predict({"heart_rate": value, "spo2": 80.0}) is not None
    assert pickle.dumps(model) == before


def test_predict_waits_for_warmup() -> None:
    model = RiskModel(warmup_labels=5)
    model.learn({"heart_rate": 80.0}, False)
    assert model.predict({"heart_rate": 80.0}) is None


@pytest.mark.parametrize("kind", sorted(MODEL_SPECS))
def test_every_kind_learns_and_predicts(kind: str) -> None:
    rng = random.Random(3)
    model = RiskModel(kind, warmup_labels=50)
    for _ in range(300):
        heart_rate = rng.gauss(90, 15)
        model.learn({"heart_rate": heart_rate, "spo2": rng.gauss(96, 2)}, heart_rate > 110)
    high = model.predict({"heart_rate": 140.0, "spo2": 96.0})
    low = model.predict({"heart_rate": 70.0, "spo2": 96.0})
    assert high is not None and low is not None
    assert high > low


@pytest.mark.parametrize("kind", sorted(MODEL_SPECS))
def test_predict_is_pure_for_every_kind(kind: str) -> None:
    rng = random.Random(5)
    model = RiskModel(kind, warmup_labels=20)
    for _ in range(100):
        heart_rate = rng.gauss(90, 15)
        model.learn({"heart_rate": heart_rate}, heart_rate > 105)
    before = pickle.dumps(model)
    model.predict({"heart_rate": 150.0})
    assert pickle.dumps(model) == before


def test_version_names_kind_and_hyperparameters() -> None:
    assert RiskModel("srp").version.startswith("srp-")
    assert RiskModel("srp").version == RiskModel("srp").version
    assert RiskModel("srp").version != RiskModel("amf").version


def test_unknown_kind_is_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown model kind"):
        RiskModel("gbm")
