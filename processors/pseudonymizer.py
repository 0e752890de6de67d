"""The pseudonymizer stage: the only process that reads patient identities.

For each identified message:
1. decode the Avro message and validate it (plausible vitals, timezone-aware time, a
   monitor in the device registry);
2. replace the record number with the patient's pseudonym from the vault and the birth date with an
   age band and the monitor's serial with its pseudonym, and drop the name and bed;
3. emit the pseudonymized event keyed by pseudonym, and an audit event. The event
   keeps its input's partition number: input and output topics have the same
   partitions, and a patient's vitals and outcomes share a partition on both, so each
   output partition keeps the event-time order of its input partition.
A message that fails step 1 becomes a restricted dead letter (``dead.letters.identified``)
with an ``input.rejected`` audit event, and gets no pseudonym.
"""

from __future__ import annotations

import logging

from processors.messages import Input, Output, RejectionLog, reject
from processors.pseudonym import age_band
from processors.vault import Identity, Vault
from schemas.errors import DecodeError
from schemas.models import BedsideVitals, ClinicalOutcome, PseudonymizedOutcome, PseudonymizedVitals
from streams.records import audit_event
from streams.topics import (
    AUDIT_EVENTS, BEDSIDE_VITALS, CLINICAL_OUTCOMES, DEAD_LETTERS_IDENTIFIED, OUTCOMES_PSEUDONYMIZED, VITALS_PSEUDONYMIZED,
)

log = logging.getLogger(__name__)

STAGE = "pseudonymizer"


class UnknownDeviceError(ValueError):
    """The monitor that sent an event is not in the device registry."""

    error_type = "unknown_device"


class PseudonymizerStage:
    name = STAGE
    inputs = (BEDSIDE_VITALS, CLINICAL_OUTCOMES)

    def __init__(self, vault: Vault) -> None:
        self.vault = vault
        self.rejections = RejectionLog(log)

    def handle(self, message: Input) -> list[Output]:
        try:
            if message.topic == CLINICAL_OUTCOMES.name:
                return self._outcome(ClinicalOutcome.from_avro(message.value), message)
            return self._vitals(BedsideVitals.from_avro(message.value), message)
        except (DecodeError, ValueError) as exc:  # ValidationError is a ValueError
            # The offset, not the key, names the input: the key is a record number.
            self.rejections.warning(message, type(exc).__name__)
            return reject(STAGE, message, exc, dead_letters=DEAD_LETTERS_IDENTIFIED)

    def _vitals(self, event: BedsideVitals, message: Input) -> list[Output]:
        device = self.vault.device_pseudonym(event.device_id)
        if not self.vault.is_registered(device):
            # The device pseudonym lets an engineer find the monitor; the serial stays in the letter's payload.
            raise UnknownDeviceError(f"device_id: monitor {device} is not in the device registry")
        subject = self.vault.pseudonym(Identity(event.record_number, event.patient_name, event.birth_date, event.device_id))
        clean = PseudonymizedVitals(
            event_id=event.event_id,
            source=event.source,
            pseudonym=subject,
            key_id=self.vault.key_id,
            age_band=age_band(event.birth_date, event.observed_at),
            sex=event.sex,
            ward=event.ward,
            device=device,
            observed_at=event.observed_at,
            consciousness=event.consciousness,
            supplemental_oxygen=event.supplemental_oxygen,
            **event.vitals(),
        )
        audit = audit_event(
            actor=STAGE, action="vitals.pseudonymized", subject_type="patient", subject_id=subject,
            input_bytes=message.value, occurred_at=event.observed_at,
            details={"event_id": str(event.event_id), "key_id": self.vault.key_id, "source": event.source},
        )
        return [Output.of(VITALS_PSEUDONYMIZED, subject, clean, message.partition), Output.of(AUDIT_EVENTS, subject, audit)]

    def _outcome(self, event: ClinicalOutcome, message: Input) -> list[Output]:
        subject = self.vault.pseudonym(Identity(event.record_number))
        clean = PseudonymizedOutcome(
            event_id=event.event_id,
            source=event.source,
            pseudonym=subject,
            key_id=self.vault.key_id,
            outcome=event.outcome,
            occurred_at=event.occurred_at,
        )
        audit = audit_event(
            actor=STAGE, action="outcome.pseudonymized", subject_type="patient", subject_id=subject,
            input_bytes=message.value, occurred_at=event.occurred_at,
            details={"event_id": str(event.event_id), "outcome": event.outcome.value, "key_id": self.vault.key_id},
        )
        return [Output.of(OUTCOMES_PSEUDONYMIZED, subject, clean, message.partition), Output.of(AUDIT_EVENTS, subject, audit)]
