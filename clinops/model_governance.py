"""Model governance: list the registered versions, promote a challenger, roll back.

A promotion or rollback needs a person whose role the access file allows under
``[models] approvers``. The command first records the approval (or the refusal) in the
audit log, then writes a decision that names that approval event to the
``model.decisions`` topic. Every scorer applies the decision within a second and
records it as ``model.promoted`` or ``model.rolled_back``. Nothing else changes the
champion: the workers never promote a model on their own.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from clinops.access import AccessPolicy
from clinops.admin_audit import record_admin_action
from clinops.audit_query import run_audit_sql
from clinops.worker_client import worker_health
from processors.model_decisions import DecisionFeed, champion_history
from processors.risk_model import MODEL_SPECS
from schemas.errors import ClinopsError
from schemas.models import ModelAction, ModelDecision
from streams.kafka_auth import security_config
from streams.producer import EventProducer
from streams.settings import Settings
from streams.topics import MODEL_DECISIONS

MIN_REASON_CHARS = 10
REGISTRY_COLUMNS = ("model_version", "kind", "labels", "positives", "progressive_auroc", "progressive_auroc_labels",
                    "trained_from", "trained_to", "sha256", "checkpointed_at", "code_version", "last_live_at")


@dataclass(frozen=True)
class Outcome:
    """The result of a governance command: the decision written, or the reason it was refused."""

    action: str
    version: str | None
    previous_version: str
    refusal: str | None
    audit_event_id: uuid.UUID
    decision_id: uuid.UUID | None = None


def champions(settings: Settings) -> list[str]:
    """Return the champion history from the decision log; the last entry scores live."""
    feed = DecisionFeed(settings.bootstrap_servers, security_config(settings))
    try:
        decisions = feed.read_to_end()
    finally:
        feed.close()
    return champion_history(decisions, MODEL_SPECS[settings.model].version)


def registry(settings: Settings) -> list[dict[str, Any]]:
    """Return every model version the workers recorded, oldest first, with its role.

    With a worker running on this machine, its live figures and roles replace the
    registry's, which date from the last checkpoint, and versions it does not run are
    marked "not running". Otherwise the champion is the version that a worker last
    recorded as its champion, so the list needs only the audit store.
    """
    result = run_audit_sql(settings, f"SELECT {', '.join(REGISTRY_COLUMNS)} FROM audit.model_registry ORDER BY first_seen")
    rows = [dict(zip(result.columns, row)) for row in result.rows]
    health = worker_health(settings.worker_port)
    if health is not None and "model" in health:
        running = {health["model"]["version"]: ("champion", health["model"])}
        running.update({model["version"]: ("challenger", model) for model in health.get("challengers", [])})
        for row in rows:
            role, live = running.get(row["model_version"], ("not running", None))
            row["role"] = role
            if live is not None:
                row.update(labels=live["learned"], positives=live.get("positives", row["positives"]),
                           progressive_auroc=live["progressive_auroc"],
                           progressive_auroc_labels=live.get("progressive_auroc_labels", row["progressive_auroc_labels"]))
        return rows
    live_rows = [row for row in rows if row["last_live_at"] is not None]
    champion = max(live_rows, key=lambda row: row["last_live_at"])["model_version"] if live_rows else None
    for row in rows:
        row["role"] = "champion" if row["model_version"] == champion else "challenger"
    return rows


def _check_request(person: str, reason: str, policy: AccessPolicy) -> tuple[str, str | None]:
    reason = reason.strip()
    if len(reason) < MIN_REASON_CHARS:
        raise ClinopsError(f"give a reason of at least {MIN_REASON_CHARS} characters; it is kept in the audit trail")
    return reason, policy.approval_refusal(person)


def _decide(settings: Settings, action: ModelAction, version: str, previous: str, person: str, reason: str,
            evidence: dict[str, Any], refusal: str | None) -> Outcome:
    """Audit the approval or refusal; on approval, write the decision that names it."""
    verb = "promotion" if action is ModelAction.PROMOTE else "rollback"
    details = {"reason": reason, "previous_version": previous, "evidence": json.dumps(evidence, default=str)}
    if refusal is not None:
        details["refusal"] = refusal
    audit_id = record_admin_action(settings, person, f"model.{verb}.{'refused' if refusal else 'approved'}",
                                   "model", version, details)
    if refusal is not None:
        return Outcome(verb, version, previous, refusal, audit_id)
    decision = ModelDecision(decision_id=uuid.uuid4(), action=action, version=version, previous_version=previous,
                             decided_by=person, reason=reason, approval_event_id=audit_id,
                             decided_at=datetime.now(timezone.utc))
    producer = EventProducer(settings.bootstrap_servers, **security_config(settings))
    producer.send(MODEL_DECISIONS, version, decision)
    producer.flush()
    return Outcome(verb, version, previous, None, audit_id, decision.decision_id)


def _evidence(rows: list[dict[str, Any]], *versions: str) -> dict[str, Any]:
    """Return the registry rows of ``versions``, which the approval event keeps as its evidence."""
    return {row["model_version"]: {key: row[key] for key in ("labels", "positives", "progressive_auroc",
                                                             "progressive_auroc_labels", "sha256")}
            for row in rows if row["model_version"] in versions}


def approve(settings: Settings, version: str, person: str, reason: str) -> Outcome:
    """Promote the challenger ``version`` to champion, when ``person`` may approve it."""
    reason, refusal = _check_request(person, reason, AccessPolicy.load(settings.access_file))
    rows = registry(settings)
    current = champions(settings)[-1]
    known = {row["model_version"] for row in rows}
    if refusal is None and version not in known:
        refusal = "no worker has run this model version; `clinops models list` shows the registered ones"
    if refusal is None and version == current:
        refusal = "this version is already the champion"
    return _decide(settings, ModelAction.PROMOTE, version, current, person, reason, _evidence(rows, version, current),
                   refusal)


def rollback(settings: Settings, person: str, reason: str) -> Outcome:
    """Restore the champion before the last promotion, when ``person`` may approve it."""
    reason, refusal = _check_request(person, reason, AccessPolicy.load(settings.access_file))
    history = champions(settings)
    current = history[-1]
    if len(history) < 2:
        refusal = refusal or "no promotion to roll back: the champion is still the configured model"
        target = current
    else:
        target = history[-2]
    return _decide(settings, ModelAction.ROLLBACK, target, current, person, reason,
                   _evidence(registry(settings), target, current), refusal)
