"""The scorer's models on a worker: load, save, follow the decision log, and audit each step.

``ModelService`` owns the lineup (processors/model_lineup.py). It builds it from the
configured kinds and their saved artefacts, saves each model that has learned, and
changes the champion only to the version that a decision in ``model.decisions`` names. Each step
becomes an audit event, which the worker produces: ``model.started``,
``model.checkpointed``, ``model.promoted``, ``model.rolled_back`` and
``model.decision.refused``.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from processors.messages import Output
from processors.model_decisions import DecisionFeed, UnreadableDecision
from processors.model_lineup import ModelLineup, UnknownModelError
from processors.model_registry import model_record
from processors.model_store import load_model, save_model
from processors.risk_model import MODEL_SPECS, RiskModel
from schemas.errors import ClinopsError
from schemas.models import ModelAction, ModelDecision
from streams.records import audit_event
from streams.topics import AUDIT_EVENTS, MODEL_DECISIONS

log = logging.getLogger(__name__)

ACTOR = "scorer"


def check_kinds(kinds: tuple[str, ...]) -> None:
    """Raise ClinopsError naming the settings when a kind is unknown."""
    for kind in kinds:
        if kind not in MODEL_SPECS:
            raise ClinopsError(f"unknown model kind {kind!r} in CLINOPS_MODEL or CLINOPS_CHALLENGERS; "
                               f"choose from {', '.join(MODEL_SPECS)}")


def build_lineup(kinds: tuple[str, ...], models_dir: Path | None) -> ModelLineup:
    """Return a lineup of ``kinds``, the first as champion, each from its saved artefact when there is one.

    With ``models_dir`` None every model starts untrained.
    """
    check_kinds(kinds)
    models = []
    for kind in kinds:
        model = load_model(models_dir, MODEL_SPECS[kind].version) if models_dir is not None else None
        if model is None:
            model = RiskModel(kind)
        else:
            log.info("loaded model %s, which has learned %d labels", model.version, model.learned)
        models.append(model)
    return ModelLineup(models)


class ModelService:
    """Keeps one worker's lineup saved and in step with the decision log."""

    def __init__(self, lineup: ModelLineup, models_dir: Path) -> None:
        self.lineup = lineup
        self.models_dir = models_dir
        self._saved_labels = {model.version: model.learned for model in lineup}
        self._decisions: DecisionFeed | None = None

    def role(self, model: RiskModel) -> str:
        return "champion" if model is self.lineup.champion else "challenger"

    def start(self, bootstrap_servers: str, client_config: Mapping[str, str]) -> list[Output]:
        """Take up the champion of the decision log, and record each model this worker starts with."""
        self._decisions = DecisionFeed(bootstrap_servers, client_config)
        readable = [d for d in self._decisions.read_to_end() if isinstance(d, ModelDecision)]
        outputs = []
        if readable:
            latest = readable[-1]
            try:
                self.lineup.promote(latest.version)
            except UnknownModelError as exc:
                outputs.append(self._refusal(latest, exc))
        for model in self.lineup:
            outputs.append(self._audit("model.started", model.version, model.version.encode(),
                                       model_record(model, self.role(model))))
        log.info("champion %s, challengers: %s", self.lineup.champion.version,
                 ", ".join(model.version for model in self.lineup.challengers) or "none")
        return outputs

    def follow(self) -> list[Output]:
        """Apply the decisions that arrived since the last call; return their audit events."""
        return self.apply(self._decisions.poll()) if self._decisions is not None else []

    def apply(self, decisions: list[ModelDecision | UnreadableDecision]) -> list[Output]:
        """Change the champion to the version each decision names; return the audit events."""
        outputs = []
        for decision in decisions:
            if isinstance(decision, UnreadableDecision):
                log.error("ignored the unreadable message at offset %d of %s: %s",
                          decision.offset, MODEL_DECISIONS.name, decision.reason)
                outputs.append(self._audit("model.decision.refused", self.lineup.champion.version, decision.reason.encode(),
                                           {"offset": decision.offset, "refusal": decision.reason}))
                continue
            try:
                previous = self.lineup.promote(decision.version)
            except UnknownModelError as exc:
                outputs.append(self._refusal(decision, exc))
                continue
            action = "model.promoted" if decision.action is ModelAction.PROMOTE else "model.rolled_back"
            log.info("%s: champion %s, was %s (decision %s)", action, decision.version, previous, decision.decision_id)
            outputs.append(self._audit(action, decision.version, decision.to_avro(), {
                "decision_id": str(decision.decision_id), "approval_event_id": str(decision.approval_event_id),
                "previous_version": previous, "decided_by": decision.decided_by, "reason": decision.reason,
            }))
        return outputs

    def save(self) -> list[Output]:
        """Save each model that has learned since its last save; return the audit events.

        Call it on the thread that lets the models learn (the event loop's), so that no
        label is learned while a model is being pickled.
        """
        outputs = []
        for model in self.lineup:
            if model.learned == self._saved_labels.get(model.version):
                continue
            try:
                artefact = save_model(self.models_dir, model)
            except (OSError, pickle.PicklingError, RecursionError, MemoryError) as exc:
                # The worker keeps scoring with the model; the next save tries again.
                log.error("saving model %s to %s failed: %r", model.version, self.models_dir, exc)
                continue
            self._saved_labels[model.version] = artefact.learned
            outputs.append(self._audit("model.checkpointed", model.version, artefact.sha256.encode(), {
                **model_record(model, self.role(model)), "sha256": artefact.sha256, "artefact": artefact.path.name,
            }))
        return outputs

    def close(self) -> None:
        if self._decisions is not None:
            self._decisions.close()
            self._decisions = None

    def _refusal(self, decision: ModelDecision, exc: UnknownModelError) -> Output:
        log.error("cannot apply decision %s: %s", decision.decision_id, exc)
        return self._audit("model.decision.refused", decision.version, decision.to_avro(), {
            "decision_id": str(decision.decision_id), "champion": self.lineup.champion.version,
            "reason": decision.reason, "refusal": str(exc),
        })

    @staticmethod
    def _audit(action: str, version: str, input_bytes: bytes, details: dict[str, Any]) -> Output:
        event = audit_event(actor=ACTOR, action=action, subject_type="model", subject_id=version,
                            input_bytes=input_bytes, occurred_at=datetime.now(timezone.utc), details=details)
        return Output.of(AUDIT_EVENTS, version, event)
