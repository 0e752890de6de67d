"""Process settings, read once from the environment (pydantic-settings)."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]


class Settings(BaseSettings):
    """Every setting of a clinops process. Environment variables override defaults."""

    model_config = SettingsConfigDict(env_prefix="CLINOPS_", extra="ignore", populate_by_name=True)

    kafka_bootstrap_servers: str | None = Field(
        default=None,
        validation_alias="KAFKA_BOOTSTRAP_SERVERS",
        description="Kafka cluster to use. Unset: the local broker that clinops starts itself.",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT",
        description="How Kafka clients connect: PLAINTEXT, or SASL_PLAINTEXT / SASL_SSL with the username and password below.",
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        default="PLAIN", description="SASL mechanism of the Kafka clients; the secured local broker takes PLAIN."
    )
    kafka_username: str | None = Field(default=None, description="SASL user name of the Kafka clients, such as analytics.")
    kafka_password: SecretStr | None = Field(default=None, description="SASL password of the Kafka clients.")
    clickhouse_url: SecretStr | None = Field(
        default=None,
        validation_alias="CLICKHOUSE_URL",
        description="ClickHouse server URL such as http://user:password@host:8123/audit. Unset: embedded chDB.",
    )
    data_dir: Path = Field(
        default=PROJECT_ROOT / "var",
        description="Folder for the local broker, the embedded ClickHouse store, keys and pid files.",
    )
    broker_port: int = Field(default=9092, description="Port of the local broker; the controller uses the next one.")
    worker_port: int = Field(default=6066, description="Loopback port of the worker's web endpoint (health, SQL).")
    app_id: str = Field(default="clinops", description="Faust application id, the prefix of consumer groups.")
    device_key: SecretStr | None = Field(
        default=None,
        description="Base64 key (16+ bytes) for device pseudonyms. Unset: one generated into the vault. Must never change.",
    )
    master_key: SecretStr | None = Field(
        default=None,
        description="Base64 32-byte key that encrypts the pseudonym vault. Unset: one generated into the key folder.",
    )
    access_file: Path = Field(
        default=PROJECT_ROOT / "config" / "access.toml",
        description="TOML file with the clinicians' roles and the roles that may re-identify a patient.",
    )
    alert_news2_medium: int = Field(default=5, description="NEWS2 aggregate that raises a MEDIUM alert.")
    alert_news2_high: int = Field(default=7, description="NEWS2 aggregate that raises a HIGH alert.")
    alert_model_risk: float | None = Field(
        default=None, ge=0.0, le=1.0,
        description="Model probability that raises an alert; unset, each model kind's own threshold (docs/model.md).",
    )
    alert_rearm_hours: float = Field(
        default=3.0, description="Hours of event time below every alert threshold before a patient can alert again."
    )
    audit_retention_years: int = Field(
        default=10, description="Years an audit row is kept after it was recorded (the EU AI Act requires at least half a year)."
    )
    audit_checkpoint_every: int = Field(default=10_000, description="Audit entries per chain between signed checkpoints.")
    audit_checkpoint_interval_s: float = Field(
        default=10.0, description="Seconds after which new audit entries get a signed checkpoint even if fewer."
    )
    identified_retention_hours: float = Field(
        default=24.0, gt=0,
        description="Hours that the identified topics (bedside.vitals, clinical.outcomes, dead.letters.identified) keep events.",
    )
    model: str = Field(
        default="ensemble",
        description="Kind of the champion, the model that scores live until a governance decision promotes another: "
                    "ensemble, logreg, logreg-weighted, srp, amf or arf (see docs/model.md).",
    )
    challengers: str = Field(
        default="",
        description="Comma-separated kinds of the challenger models, which score every observation in shadow "
                    "and may be promoted with `clinops models approve`.",
    )
    model_save_interval_s: float = Field(
        default=60.0, gt=0, description="Seconds between saves of each model that has learned since its last save.",
    )
    label_horizon_hours: float = Field(
        default=6.0, description="An observation is labelled positive when sepsis onset follows within this many hours."
    )

    @property
    def challenger_kinds(self) -> tuple[str, ...]:
        return tuple(kind.strip() for kind in self.challengers.split(",") if kind.strip())

    @property
    def uses_local_broker(self) -> bool:
        return self.kafka_bootstrap_servers is None

    @property
    def bootstrap_servers(self) -> str:
        return self.kafka_bootstrap_servers or f"127.0.0.1:{self.broker_port}"

    @property
    def identified_retention_ms(self) -> int:
        return int(self.identified_retention_hours * 3_600_000)

    @property
    def kafka_dir(self) -> Path:
        return self.data_dir / "kafka"

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "clickhouse"

    @property
    def keys_dir(self) -> Path:
        return self.data_dir / "keys"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
