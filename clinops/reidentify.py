"""Re-identification at the point of care: one alert's patient, for one clinician, audited.

``clinops reidentify ALERT_ID --by CLINICIAN --reason TEXT`` returns the identity behind
an alert only when the clinician's role is allowed in the access file. Granted requests
are audited as ``patient.reidentified`` and refused ones as ``reidentification.refused``.
Both name the clinician, the alert, the pseudonym and the reason, never the identity.
The command reads the vault, so it runs where the pseudonymizer's keys are.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from clinops.access import AccessPolicy
from clinops.admin_audit import record_admin_action
from clinops.audit_query import run_audit_sql
from processors.vault import Identity, open_vault
from schemas.errors import ClinopsError
from streams.settings import Settings

MIN_REASON_CHARS = 10


@dataclass(frozen=True)
class Decision:
    """The outcome of one request: the identity when granted, the refusal otherwise."""

    alert_id: str
    pseudonym: str | None
    identity: Identity | None
    refusal: str | None
    audit_event_id: uuid.UUID


def alert_pseudonym(settings: Settings, alert_id: str) -> str | None:
    """Return the pseudonym of the patient an alert was raised for, from the audit trail."""
    result = run_audit_sql(
        settings,
        "SELECT JSONExtractString(details, 'pseudonym') FROM audit_events "
        f"WHERE action = 'alert.raised' AND subject_id = '{alert_id}' LIMIT 1",
    )
    return result.rows[0][0] if result.rows else None


def reidentify(settings: Settings, alert_id: str, clinician: str, reason: str) -> Decision:
    """Decide one request, audit the decision, and return it."""
    try:
        alert_id = str(uuid.UUID(alert_id))
    except ValueError:
        raise ClinopsError(f"{alert_id!r} is not an alert id; alert ids are UUIDs, as `clinops alerts` prints them") from None
    reason = reason.strip()
    if len(reason) < MIN_REASON_CHARS:
        raise ClinopsError(f"give a reason of at least {MIN_REASON_CHARS} characters; it is kept in the audit trail")
    policy = AccessPolicy.load(settings.access_file)

    pseudonym = alert_pseudonym(settings, alert_id)
    refusal = policy.refusal(clinician)
    identity = None
    if refusal is None and pseudonym is None:
        refusal = "the alert is not in the audit trail"
    if refusal is None:
        with open_vault(settings) as vault:
            identity = vault.identity(pseudonym)
            if identity is None:
                refusal = "the patient's identity was erased" if vault.erased(pseudonym) else "the pseudonym is not in this vault"

    details = {"alert_id": alert_id, "reason": reason, "role": policy.clinician_roles.get(clinician, "")}
    if refusal is not None:
        details["refusal"] = refusal
    action = "reidentification.refused" if refusal else "patient.reidentified"
    subject_type, subject_id = ("patient", pseudonym) if pseudonym else ("alert", alert_id)
    event_id = record_admin_action(settings, clinician, action, subject_type, subject_id, details)
    return Decision(alert_id, pseudonym, None if refusal else identity, refusal, event_id)
