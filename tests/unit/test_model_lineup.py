"""The champion decides, challengers score in shadow, and decisions replay to one champion."""

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from processors.model_decisions import UnreadableDecision, champion_history
from processors.model_lineup import ModelLineup, UnknownModelError
from processors.risk_model import RiskModel
from schemas.models import ModelAction, ModelDecision

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def trained_lineup() -> ModelLineup:
    lineup = ModelLineup([RiskModel("logreg", warmup_labels=20), RiskModel("logreg-weighted", warmup_labels=20)])
    rng = random.Random(7)
    for hour in range(60):
        x = {"a": rng.random(), "b": rng.random()}
        lineup.learn(x, x["a"] > 0.7, lineup.predict(x), T0 + timedelta(hours=hour))
    return lineup


def test_models_learn_every_label() -> None:
    lineup = trained_lineup()
    assert [model.learned for model in lineup] == [60, 60]
    assert all(model.ready for model in lineup)
    # Only predictions made after the warm-up were scored against their labels.
    assert [model.auroc.count for model in lineup] == [40, 40]
    assert lineup.champion.first_label_at == T0
    assert lineup.champion.last_label_at == T0 + timedelta(hours=59)
    assert lineup.champion.features == ("a", "b")


def test_champion_decides_challengers_shadow() -> None:
    lineup = trained_lineup()
    risks = lineup.predict({"a": 0.9, "b": 0.1})
    champion, challenger = lineup.models
    assert lineup.champion_risk(risks) == champion.predict({"a": 0.9, "b": 0.1})
    assert lineup.challenger_risks(risks) == {challenger.version: challenger.predict({"a": 0.9, "b": 0.1})}


def test_promotion_swaps_roles() -> None:
    lineup = trained_lineup()
    champion, challenger = lineup.models
    assert lineup.promote(challenger.version) == champion.version
    assert lineup.champion is challenger
    assert lineup.challengers == [champion]
    risks = lineup.predict({"a": 0.2, "b": 0.5})
    assert lineup.champion_risk(risks) == risks[1]
    assert set(lineup.challenger_risks(risks)) == {champion.version}


def test_unknown_version_is_refused() -> None:
    lineup = trained_lineup()
    with pytest.raises(UnknownModelError, match="does not run on this worker"):
        lineup.promote("srp-00000000")
    assert lineup.champion is lineup.models[0]


def test_warming_challengers_left_out() -> None:
    lineup = ModelLineup([RiskModel("logreg", warmup_labels=1), RiskModel("srp", warmup_labels=10_000)])
    lineup.learn({"a": 1.0}, True, (), T0)
    lineup.learn({"a": 0.0}, False, (), T0)
    assert lineup.challenger_risks(lineup.predict({"a": 0.5})) == {}


def test_duplicate_version_runs_once() -> None:
    assert len(ModelLineup([RiskModel("logreg"), RiskModel("logreg")]).models) == 1


def decision(action: ModelAction, version: str, previous: str) -> ModelDecision:
    return ModelDecision(decision_id=uuid.uuid4(), action=action, version=version, previous_version=previous,
                         decided_by="dr.osei", reason="for the test", approval_event_id=uuid.uuid4(), decided_at=T0)


def test_decisions_replay_to_history() -> None:
    log = [decision(ModelAction.PROMOTE, "b", "a"), UnreadableDecision(1, "decode"),
           decision(ModelAction.PROMOTE, "c", "b"), decision(ModelAction.ROLLBACK, "b", "c")]
    assert champion_history(log, "a") == ["a", "b"]
    assert champion_history([*log, decision(ModelAction.ROLLBACK, "a", "b")], "a") == ["a"]
    # A rollback with nothing to roll back leaves the configured champion.
    assert champion_history([decision(ModelAction.ROLLBACK, "a", "a")], "a") == ["a"]
