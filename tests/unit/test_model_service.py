"""The worker's model service: decisions change the champion, and every step is audited."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

from processors.model_decisions import UnreadableDecision
from processors.model_service import ModelService, build_lineup, check_kinds
from processors.model_store import load_model
from schemas.errors import ClinopsError
from schemas.models import AuditEvent, ModelAction, ModelDecision

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def service(tmp_path: Path) -> ModelService:
    return ModelService(build_lineup(("logreg", "logreg-weighted"), tmp_path), tmp_path)


def decision(action: ModelAction, version: str, previous: str) -> ModelDecision:
    return ModelDecision(decision_id=uuid.uuid4(), action=action, version=version, previous_version=previous,
                         decided_by="dr.osei", reason="for the test", approval_event_id=uuid.uuid4(), decided_at=T0)


def audits(outputs: list) -> list[AuditEvent]:
    return [AuditEvent.from_avro(output.value) for output in outputs]


def test_promotion_and_rollback_are_audited(tmp_path: Path) -> None:
    models = service(tmp_path)
    champion, challenger = (model.version for model in models.lineup)
    promote = decision(ModelAction.PROMOTE, challenger, champion)
    events = audits(models.apply([promote, decision(ModelAction.ROLLBACK, champion, challenger)]))
    assert [event.action for event in events] == ["model.promoted", "model.rolled_back"]
    assert events[0].subject_id == challenger
    details = json.loads(events[0].details)
    assert details["previous_version"] == champion
    assert details["approval_event_id"] == str(promote.approval_event_id)
    assert models.lineup.champion.version == champion


def test_unknown_or_unreadable_refused(tmp_path: Path) -> None:
    models = service(tmp_path)
    champion = models.lineup.champion.version
    events = audits(models.apply([decision(ModelAction.PROMOTE, "srp-00000000", champion),
                                  UnreadableDecision(3, "decode failed")]))
    assert [event.action for event in events] == ["model.decision.refused", "model.decision.refused"]
    assert "does not run on this worker" in json.loads(events[0].details)["refusal"]
    assert json.loads(events[1].details)["offset"] == 3
    assert models.lineup.champion.version == champion


def test_save_skips_unchanged_models(tmp_path: Path) -> None:
    models = service(tmp_path)
    assert models.save() == []
    champion = models.lineup.champion
    champion.learn({"a": 1.0}, True, T0)
    (event,) = audits(models.save())
    assert event.action == "model.checkpointed"
    assert event.subject_id == champion.version
    details = json.loads(event.details)
    assert details["role"] == "champion"
    assert details["labels"] == 1
    assert details["trained_from"] == T0.isoformat()
    assert load_model(tmp_path, champion.version).learned == 1
    assert models.save() == []


def test_failed_save_is_retried(tmp_path: Path) -> None:
    blocked = tmp_path / "models"
    blocked.write_text("a file where the folder should be")
    models = ModelService(build_lineup(("logreg",), tmp_path), blocked)
    models.lineup.champion.learn({"a": 1.0}, True, T0)
    assert models.save() == []  # logged, and the worker goes on
    models.models_dir = tmp_path / "elsewhere"
    assert [event.action for event in audits(models.save())] == ["model.checkpointed"]


def test_unknown_kind_names_settings() -> None:
    with pytest.raises(ClinopsError, match="CLINOPS_CHALLENGERS; choose from"):
        check_kinds(("ensemble", "xgboost"))
