"""The scorer stage: NEWS2 and the online model for every observation, alerts, labels.

For each pseudonymized vitals message:
1. decode it; a bad message becomes a dead letter;
2. update the patient's state, unless the observation is late (older than the newest
   seen), which is scored from its own values, flagged, and changes no state;
3. release the labels this observation settles, and let the model learn from them;
4. score NEWS2 and the model, emit the risk score and its audit event;
5. raise an alert when the policy calls for one, with its audit event.
Outcome messages set sepsis onsets (labels) and discharges. A discharge releases every
pending label, reports the model's performance and drops the patient's state, once the
discharge gate has seen the patient's last vitals.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timezone

from processors.alerting import AlertPolicy, AlertState
from processors.discharges import DischargeGate, HeldDischarge
from processors.explanations import explain
from processors.features import PatientState
from processors.labels import LabelJoiner, Pending
from processors.messages import Input, Output, RejectionLog, reject
from processors.news2 import news2
from processors.patient_store import PatientStore
from processors.model_lineup import ModelLineup
from processors.performance import StreamingAuroc
from processors.risk_model import RiskModel
from schemas.errors import DecodeError
from schemas.models import AlertSeverity, DeteriorationAlert, OutcomeKind, PseudonymizedOutcome, PseudonymizedVitals, RiskScore
from streams.records import audit_event
from streams.topics import ALERTS, AUDIT_EVENTS, OUTCOMES_PSEUDONYMIZED, RISK_SCORES, VITALS_PSEUDONYMIZED

log = logging.getLogger(__name__)

STAGE = "scorer"
ALERT_NAMESPACE = uuid.UUID("3e2d1c0b-4a59-5867-9788-a6b5c4d3e2f1")
# Wall-clock seconds without input after which held discharges are processed anyway,
# so the end of a feed is not held back forever. It only decides when the tail of a
# replay is released, never a label's value.
IDLE_FLUSH_S = 2.0


class ScorerStage:
    name = STAGE
    inputs = (VITALS_PSEUDONYMIZED, OUTCOMES_PSEUDONYMIZED)

    def __init__(self, policy: AlertPolicy, labels: LabelJoiner, lineup: ModelLineup,
                 patients: PatientStore | None = None) -> None:
        self.policy = policy
        self.labels = labels
        self.lineup = lineup
        self.patients = patients if patients is not None else PatientStore()
        self.alert_states: dict[str, AlertState] = {}
        self.news2_auroc = StreamingAuroc(0, 20, 21)
        self.discharges = DischargeGate()
        self._last_input = time.monotonic()
        self._last_tick: float | None = None
        # The next offset to handle, per input topic and partition.
        self.positions: dict[tuple[str, int], int] = {}
        self.rejections = RejectionLog(log)

    def handle(self, message: Input) -> list[Output]:
        self._last_input = time.monotonic()
        self.positions[message.topic, message.partition] = message.offset + 1
        try:
            if message.topic == OUTCOMES_PSEUDONYMIZED.name:
                return self._outcome(PseudonymizedOutcome.from_avro(message.value), message)
            event = PseudonymizedVitals.from_avro(message.value)
            outputs = self._vitals(event, message)
            latest_at = self.patients[event.pseudonym].latest_at
            released = self.discharges.on_vitals(message.partition, event.pseudonym, latest_at, event.observed_at)
            return outputs + self._discharge(released)
        except (DecodeError, ValueError) as exc:  # ValidationError is a ValueError
            self.rejections.warning(message, str(exc))
            return reject(STAGE, message, exc)

    def _vitals(self, event: PseudonymizedVitals, message: Input) -> list[Output]:
        subject = event.pseudonym
        at = event.observed_at

        state = self.patients.get(subject)
        late = state is not None and at <= state.latest_at
        if state is None:
            state = PatientState(first_seen=at, latest_at=at, ward=event.ward)
            self.patients.put(subject, state, message.partition)
        if late:
            # A late observation is scored from its own values and changes no state.
            view = PatientState(first_seen=state.first_seen, latest_at=at, ward=state.ward)
            view.update(event.vitals(), at)
        else:
            state.update(event.vitals(), at)
            self.patients.changed(subject, message.partition)
            view = state
            self._learn(self.labels.advance(subject, at))

        current = view.current(at)
        score = news2(current, event.consciousness.value if event.consciousness else None, event.supplemental_oxygen)
        features = view.features(at, score, event.age_band, event.sex)
        risks = self.lineup.predict(features)
        model_risk = self.lineup.champion_risk(risks)
        champion = self.lineup.champion
        if not late:
            self.labels.add(subject, Pending.of(at, features, risks, score.total))

        risk = RiskScore(
            event_id=event.event_id,
            pseudonym=subject,
            observed_at=at,
            news2=score.total,
            news2_parameters=score.parameters,
            news2_partial=score.partial,
            news2_red_flag=score.red_flag,
            model_risk=model_risk,
            model_version=champion.version,
            late=late,
            challenger_risks=self.lineup.challenger_risks(risks),
        )
        shadow = {"challenger_risks": risk.challenger_risks} if risk.challenger_risks else {}
        audit = audit_event(
            actor=STAGE, action="risk.scored", subject_type="patient", subject_id=subject,
            input_bytes=message.value, occurred_at=at,
            details={
                "event_id": str(event.event_id), "news2": score.total, "news2_parameters": score.parameters,
                "news2_partial": score.partial, "model_risk": model_risk, "model_version": champion.version,
                "late": late, **shadow,
            },
        )
        outputs = [Output.of(RISK_SCORES, subject, risk), Output.of(AUDIT_EVENTS, subject, audit)]
        if late:
            log.info("late observation for a patient: observed %s, newest %s", at.isoformat(), state.latest_at.isoformat())
            return outputs

        severity, reasons = self.policy.assess(score, model_risk, champion.spec.alert_threshold)
        alert_state = self.alert_states.setdefault(subject, AlertState())
        if alert_state.observe(at, severity, self.policy.rearm):
            explanations = explain(features, model_risk, champion.predict)
            outputs += self._alert(event, risk, AlertSeverity(severity), reasons, explanations, message)
        return outputs

    def _alert(self, event: PseudonymizedVitals, risk: RiskScore, severity: AlertSeverity, reasons: list[str],
               explanations: list[str], message: Input) -> list[Output]:
        alert = DeteriorationAlert(
            # Derived from the observation, so a redelivered observation repeats the same alert id.
            alert_id=uuid.uuid5(ALERT_NAMESPACE, f"{event.event_id}|{severity.value}"),
            event_id=event.event_id,
            pseudonym=event.pseudonym,
            ward=event.ward,
            observed_at=event.observed_at,
            raised_at=datetime.now(timezone.utc),
            severity=severity,
            reasons=reasons,
            news2=risk.news2,
            news2_partial=risk.news2_partial,
            model_risk=risk.model_risk,
            model_version=risk.model_version,
            explanations=explanations,
        )
        audit = audit_event(
            actor=STAGE, action="alert.raised", subject_type="alert", subject_id=str(alert.alert_id),
            input_bytes=message.value, occurred_at=event.observed_at,
            details={
                "event_id": str(event.event_id), "pseudonym": event.pseudonym, "severity": severity.value, "reasons": reasons,
                "news2": risk.news2, "model_risk": risk.model_risk, "model_version": risk.model_version,
                "explanations": explanations,
            },
        )
        return [Output.of(ALERTS, event.pseudonym, alert), Output.of(AUDIT_EVENTS, str(alert.alert_id), audit)]

    def _outcome(self, event: PseudonymizedOutcome, message: Input) -> list[Output]:
        subject = event.pseudonym
        if event.outcome is OutcomeKind.SEPSIS_ONSET:
            # Safe to apply at once: labels read the onset only when they are released.
            self.labels.onset(subject, event.occurred_at)
        state = self.patients.get(subject)
        released = []
        if event.outcome is OutcomeKind.DISCHARGE:
            released = self.discharges.hold(message.partition, event, message.value, state.latest_at if state else None)

        audit = audit_event(
            actor=STAGE, action="outcome.received", subject_type="patient", subject_id=subject,
            input_bytes=message.value, occurred_at=event.occurred_at,
            details={"event_id": str(event.event_id), "outcome": event.outcome.value},
        )
        return [Output.of(AUDIT_EVENTS, subject, audit), *self._discharge(released)]

    def _discharge(self, released: list[HeldDischarge]) -> list[Output]:
        """Label each discharged patient, drop its state, and report the model's performance."""
        outputs = []
        for held in released:
            subject = held.event.pseudonym
            self._learn(self.labels.discharge(subject))
            self.patients.pop(subject, held.partition)
            self.alert_states.pop(subject, None)
            outputs += self._performance_audit(held.event, held.value)
        return outputs

    def note_input(self) -> None:
        """Restart the idle clock, as when input arrives: the worker calls it when a batch is done."""
        self._last_input = time.monotonic()

    def flush_idle(self, tick_interval_s: float = 1.0, drained: Callable[[], bool] | None = None) -> list[Output]:
        """Process every held discharge once no input has arrived for IDLE_FLUSH_S.

        A timer calls this every ``tick_interval_s``. A tick that comes late means that
        the worker was busy, for example saving a large model, and input may be waiting
        that it had no chance to read, so a late tick restarts the idle clock. Flushing
        then would drop patients whose vitals are still in the backlog, and their sepsis
        onsets with them. ``drained``, when given, must confirm that every input
        partition has been read to its end: a worker can go without input for seconds
        while its consumer fetches for another stage.
        """
        now = time.monotonic()
        late = self._last_tick is not None and now - self._last_tick > 2 * tick_interval_s
        self._last_tick = now
        if late:
            self._last_input = now
            return []
        if not len(self.discharges) or now - self._last_input < IDLE_FLUSH_S:
            return []
        if drained is not None and not drained():
            self._last_input = now
            return []
        return self._discharge(self.discharges.flush())

    @property
    def model(self) -> RiskModel:
        """The champion: the model whose risk scores live."""
        return self.lineup.champion

    def _learn(self, released: list[tuple[Pending, bool]]) -> None:
        """Evaluate each released prediction against its label, then learn from it
        (prequential evaluation: each prediction is scored before the model learns its label)."""
        for observation, label in released:
            if observation.news2 is not None:
                self.news2_auroc.update(observation.news2, label)
            self.lineup.learn(observation.features, label, observation.risks, observation.observed_at)

    def _performance_audit(self, event: PseudonymizedOutcome, input_bytes: bytes) -> list[Output]:
        """Return one model.performance audit event per model in the lineup, champion first."""
        outputs = []
        for model in (self.lineup.champion, *self.lineup.challengers):
            auroc = model.auroc
            audit = audit_event(
                actor=STAGE, action="model.performance", subject_type="model", subject_id=model.version,
                input_bytes=input_bytes, occurred_at=event.occurred_at,
                details={
                    "outcome_event_id": str(event.event_id),
                    "role": "champion" if model is self.lineup.champion else "challenger",
                    "labels": model.learned,
                    "positives": model.positives,
                    "model_auroc": auroc.value(),
                    "model_auroc_labels": auroc.count,
                    "news2_auroc": self.news2_auroc.value(),
                    "news2_auroc_labels": self.news2_auroc.count,
                },
            )
            outputs.append(Output.of(AUDIT_EVENTS, model.version, audit))
        return outputs
