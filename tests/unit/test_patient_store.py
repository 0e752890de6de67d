"""The scorer's patient store: changes, tombstones, and loading a recovered state."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from processors.features import PatientState
from processors.patient_store import PatientStore
from processors.model_lineup import ModelLineup
from processors.risk_model import RiskModel

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def test_persist_writes_changed_states_once() -> None:
    saved: list[tuple[int, str, dict | None]] = []
    store = PatientStore(save=lambda partition, key, value: saved.append((partition, key, value)))
    state = PatientState(first_seen=T0, latest_at=T0, ward="MICU")
    store.put("p-1", state, 2)
    state.update({"heart_rate": 90.0}, T0 + timedelta(hours=1))
    store.changed("p-1", 2)

    assert store.persist() == 1
    assert saved == [(2, "p-1", state.to_dict())]
    assert store.persist() == 0


def test_discharge_writes_tombstone() -> None:
    saved: list[tuple[int, str, dict | None]] = []
    store = PatientStore(save=lambda partition, key, value: saved.append((partition, key, value)))
    store.put("p-1", PatientState(first_seen=T0, latest_at=T0, ward="MICU"), 0)
    store.persist()
    store.pop("p-1", 0)
    store.persist()
    assert saved[-1] == (0, "p-1", None)
    assert "p-1" not in store


def test_recovered_state_is_loaded() -> None:
    state = PatientState(first_seen=T0, latest_at=T0, ward="SICU")
    state.update({"heart_rate": 120.0}, T0 + timedelta(hours=3))
    recovered = {"p-1": state.to_dict()}
    store = PatientStore(load=recovered.get)
    assert store.get("p-1") == state
    assert store.get("p-2") is None


def test_empty_store_is_still_a_store() -> None:
    # An empty store is falsy (it has a length); callers must test `is None`.
    from processors.alerting import AlertPolicy
    from processors.labels import LabelJoiner
    from processors.scorer import ScorerStage

    store = PatientStore()
    assert ScorerStage(AlertPolicy(), LabelJoiner(), ModelLineup([RiskModel()]), patients=store).patients is store
