"""pydantic models of the events, validated where data enters the system.

Each model names its Avro schema in ``avro_schema``, and a test proves that field
names, types and nullability agree with the ``.avsc`` file. Validation enforces the
rules the Avro types cannot. Timestamps must be timezone-aware: a naive one is
rejected, never read as local time. NaN becomes "not measured". A vital sign outside
the range a human body can produce is rejected with the field named.
"""

from __future__ import annotations

import math
import uuid
from datetime import date, datetime, timezone
from enum import Enum
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from schemas.codec import SchemaRegistry, registry


def _to_utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc)


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]

# Ranges a monitor can report for a living adult. They are wide enough for any real
# reading and narrow enough to catch a unit error: a Fahrenheit temperature (99)
# labelled Celsius, an SpO2 sent as a fraction (0.97) or a value scaled twice (200). Sources: monitor
# display ranges and the extremes in the PhysioNet 2019 ICU data.
VITAL_RANGES: dict[str, tuple[float, float]] = {
    "heart_rate": (20.0, 300.0),
    "spo2": (20.0, 100.0),
    "temperature": (25.0, 45.0),
    "systolic_bp": (20.0, 300.0),
    "mean_arterial_pressure": (10.0, 300.0),
    "diastolic_bp": (5.0, 250.0),
    "respiratory_rate": (0.0, 90.0),
    "etco2": (0.0, 150.0),
}
VITAL_NAMES = tuple(VITAL_RANGES)

# Hospital record numbers and monitor serials are 4 to 32 letters, digits and inner
# hyphens. Anything else (empty, spaces, control characters) is a feed fault, and the
# pseudonym of a malformed value would silently split one patient in two.
RECORD_NUMBER_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{2,30})[A-Za-z0-9]$"
DEVICE_ID_PATTERN = RECORD_NUMBER_PATTERN


def _vital(name: str) -> Any:
    low, high = VITAL_RANGES[name]
    return Field(default=None, ge=low, le=high)


class Consciousness(str, Enum):
    ALERT = "ALERT"
    CVPU = "CVPU"


class OutcomeKind(str, Enum):
    SEPSIS_ONSET = "SEPSIS_ONSET"
    DISCHARGE = "DISCHARGE"


class AlertSeverity(str, Enum):
    MEDIUM = "MEDIUM"
    HIGH = "HIGH"


class ModelAction(str, Enum):
    PROMOTE = "PROMOTE"
    ROLLBACK = "ROLLBACK"


class Event(BaseModel):
    """Base of every event model: immutable, no unknown fields, Avro round trip."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    avro_schema: ClassVar[str]

    def to_avro(self, codec: SchemaRegistry = registry) -> bytes:
        return codec.encode(self.avro_schema, self.model_dump())

    @classmethod
    def from_avro(cls, data: bytes, codec: SchemaRegistry = registry) -> Event:
        """Decode and validate one message; raises DecodeError or ValidationError."""
        _, record = codec.decode(data, cls.avro_schema)
        return cls.model_validate(record)


class VitalSigns(Event):
    """The vital signs and bedside assessments shared by identified and pseudonymized vitals."""

    heart_rate: float | None = _vital("heart_rate")
    spo2: float | None = _vital("spo2")
    temperature: float | None = _vital("temperature")
    systolic_bp: float | None = _vital("systolic_bp")
    mean_arterial_pressure: float | None = _vital("mean_arterial_pressure")
    diastolic_bp: float | None = _vital("diastolic_bp")
    respiratory_rate: float | None = _vital("respiratory_rate")
    etco2: float | None = _vital("etco2")
    consciousness: Consciousness | None = None
    supplemental_oxygen: bool | None = None

    @field_validator(*VITAL_NAMES, mode="before")
    @classmethod
    def _missing_is_none(cls, value: Any) -> Any:
        if isinstance(value, float) and math.isnan(value):
            return None
        if isinstance(value, str) and value.strip() in ("", "NaN", "nan"):
            return None
        return value

    def vitals(self) -> dict[str, float | None]:
        return {name: getattr(self, name) for name in VITAL_NAMES}


class BedsideVitals(VitalSigns):
    avro_schema: ClassVar[str] = "bedside_vitals"

    event_id: uuid.UUID
    source: str = Field(min_length=1)
    record_number: str = Field(pattern=RECORD_NUMBER_PATTERN)
    patient_name: str = Field(min_length=1)
    birth_date: date
    sex: str | None = Field(default=None, pattern="^[FM]$")
    ward: str = Field(min_length=1)
    bed: str
    device_id: str = Field(pattern=DEVICE_ID_PATTERN)
    observed_at: UtcDatetime


class PseudonymizedVitals(VitalSigns):
    avro_schema: ClassVar[str] = "pseudonymized_vitals"

    event_id: uuid.UUID
    source: str
    pseudonym: str
    key_id: str
    age_band: str | None = None
    sex: str | None = None
    ward: str
    device: str | None = None
    observed_at: UtcDatetime


class RiskScore(Event):
    avro_schema: ClassVar[str] = "risk_score"

    event_id: uuid.UUID
    pseudonym: str
    observed_at: UtcDatetime
    news2: int | None = None
    news2_parameters: int = Field(ge=0, le=7)
    news2_partial: bool
    news2_red_flag: bool
    model_risk: float | None = Field(default=None, ge=0.0, le=1.0)
    model_version: str
    late: bool
    challenger_risks: dict[str, Annotated[float, Field(ge=0.0, le=1.0)]] = Field(default_factory=dict)


class DeteriorationAlert(Event):
    avro_schema: ClassVar[str] = "deterioration_alert"

    alert_id: uuid.UUID
    event_id: uuid.UUID
    pseudonym: str
    ward: str
    observed_at: UtcDatetime
    raised_at: UtcDatetime
    severity: AlertSeverity
    reasons: list[str]
    news2: int | None = None
    news2_partial: bool
    model_risk: float | None = None
    model_version: str
    explanations: list[str] = Field(default_factory=list)


class ClinicalOutcome(Event):
    avro_schema: ClassVar[str] = "clinical_outcome"

    event_id: uuid.UUID
    source: str
    record_number: str = Field(pattern=RECORD_NUMBER_PATTERN)
    outcome: OutcomeKind
    occurred_at: UtcDatetime


class PseudonymizedOutcome(Event):
    avro_schema: ClassVar[str] = "pseudonymized_outcome"

    event_id: uuid.UUID
    source: str
    pseudonym: str
    key_id: str
    outcome: OutcomeKind
    occurred_at: UtcDatetime


class AuditEvent(Event):
    avro_schema: ClassVar[str] = "audit_event"

    event_id: uuid.UUID
    occurred_at: UtcDatetime
    emitted_at: UtcDatetime
    actor: str
    action: str
    subject_type: str
    subject_id: str
    input_sha256: str = Field(pattern="^[0-9a-f]{64}$")
    details: str


class DeadLetter(Event):
    avro_schema: ClassVar[str] = "dead_letter"

    event_id: uuid.UUID
    stage: str
    topic: str
    partition: int
    offset: int
    error_type: str
    reason: str
    payload: bytes
    rejected_at: UtcDatetime


class AuditCheckpoint(Event):
    avro_schema: ClassVar[str] = "audit_checkpoint"

    chain: int
    tree_size: int
    root: str = Field(pattern="^[0-9a-f]{64}$")
    head_hash: str = Field(pattern="^[0-9a-f]{64}$")
    signed_at: UtcDatetime
    key_id: str
    public_key: str
    signature: str


class ModelDecision(Event):
    """An approved change of the live model; see processors/model_lineup.py."""

    avro_schema: ClassVar[str] = "model_decision"

    decision_id: uuid.UUID
    action: ModelAction
    version: str = Field(min_length=1)
    previous_version: str = Field(min_length=1)
    decided_by: str = Field(min_length=1)
    reason: str = Field(min_length=1)
    approval_event_id: uuid.UUID
    decided_at: UtcDatetime


MODELS: tuple[type[Event], ...] = (
    BedsideVitals,
    PseudonymizedVitals,
    RiskScore,
    DeteriorationAlert,
    ClinicalOutcome,
    PseudonymizedOutcome,
    AuditEvent,
    AuditCheckpoint,
    DeadLetter,
    ModelDecision,
)
