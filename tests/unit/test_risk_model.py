"""The online model: prediction must not move its state."""

from __future__ import annotations

import pickle
import random

import pytest

from processors.risk_model import MODEL_SPECS, RiskModel


def trained(kind: str, warmup: int, labels: int, seed: int, positive_above: float, spo2: bool = True) -> RiskModel:
    """Return a model of ``kind`` that learned ``labels`` random heart rates, positive above ``positive_above``."""
    rng = random.Random(seed)
    model = RiskModel(kind, warmup_labels=warmup)
    for _ in range(labels):
        heart_rate = rng.gauss(90, 15)
        features = {"heart_rate": heart_rate, "spo2": rng.gauss(96, 2)} if spo2 else {"heart_rate": heart_rate}
        model.learn(features, heart_rate > positive_above)
    return model


def trained_model() -> RiskModel:
    return trained("logreg", warmup=20, labels=60, seed=7, positive_above=100)


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
    model = trained(kind, warmup=50, labels=300, seed=3, positive_above=110)
    high = model.predict({"heart_rate": 140.0, "spo2": 96.0})
    low = model.predict({"heart_rate": 70.0, "spo2": 96.0})
    assert high is not None and low is not None
    assert high > low


@pytest.mark.parametrize("kind", sorted(MODEL_SPECS))
def test_predict_is_pure_for_every_kind(kind: str) -> None:
    model = trained(kind, warmup=20, labels=100, seed=5, positive_above=105, spo2=False)
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
