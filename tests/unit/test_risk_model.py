"""The online model: prediction must not move its state."""

from __future__ import annotations

import pickle
import random

from processors.risk_model import RiskModel


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
