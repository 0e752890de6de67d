"""Saving and loading the live model, checked against its SHA-256."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from processors.model_store import load_model, save_model
from processors.risk_model import RiskModel


def trained(kind: str = "logreg") -> RiskModel:
    model = RiskModel(kind, warmup_labels=2)
    for index in range(20):
        model.learn({"heart_rate": 60.0 + 5 * index}, index > 12)
    return model


def test_saved_model_loads_and_predicts_the_same(tmp_path: Path) -> None:
    model = trained()
    artefact = save_model(tmp_path, model)
    assert artefact.sha256 == hashlib.sha256(artefact.path.read_bytes()).hexdigest()
    loaded = load_model(tmp_path, model.version)
    assert loaded is not None
    assert loaded.learned == 20
    assert loaded.predict({"heart_rate": 130.0}) == model.predict({"heart_rate": 130.0})


def test_tampered_artefact_is_refused(tmp_path: Path) -> None:
    model = trained()
    artefact = save_model(tmp_path, model)
    artefact.path.write_bytes(artefact.path.read_bytes() + b"\x00")
    assert load_model(tmp_path, model.version) is None


def test_missing_or_other_version_loads_nothing(tmp_path: Path) -> None:
    assert load_model(tmp_path, "logreg-00000000") is None
    model = trained()
    save_model(tmp_path, model)
    other = RiskModel("srp").version
    (tmp_path / f"{other}.pkl").write_bytes((tmp_path / f"{model.version}.pkl").read_bytes())
    sidecar = json.loads((tmp_path / f"{model.version}.json").read_text())
    (tmp_path / f"{other}.json").write_text(json.dumps(sidecar))
    assert load_model(tmp_path, other) is None


def test_deep_model_saves_and_loads(tmp_path: Path) -> None:
    # Online trees grow deeper than the default recursion limit of the pickler.
    model = RiskModel("logreg", warmup_labels=2)
    chain: list = []
    for _ in range(20_000):
        chain = [chain]
    model.deep = chain
    artefact = save_model(tmp_path, model)
    loaded = load_model(tmp_path, model.version)
    assert loaded is not None
    assert artefact.sha256
    depth, node = 0, loaded.deep
    while node:
        depth, node = depth + 1, node[0]
    assert depth == 20_000
