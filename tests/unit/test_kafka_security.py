"""Kafka client security settings, the secured broker's password file and its role table."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import faust
import pytest
from confluent_kafka.admin import AclOperation, ResourceType

from infra.kafka import sasl
from infra.kafka.acls import (
    ANALYTICS, CLINICIAN, FEED, IDENTIFIED_DEAD_LETTERS, PSEUDONYMIZER, ROLES, Role, role_bindings,
)
from infra.kafka.launcher import LocalBroker, replace_properties
from schemas.errors import ClinopsError
from streams.kafka_auth import faust_credentials, security_config
from streams.settings import Settings
from streams.topics import BEDSIDE_VITALS, CLINICAL_OUTCOMES, VITALS_PSEUDONYMIZED

IDENTIFIED = {BEDSIDE_VITALS.name, CLINICAL_OUTCOMES.name, IDENTIFIED_DEAD_LETTERS}


def sasl_settings(**overrides: object) -> Settings:
    values: dict[str, object] = {
        "kafka_security_protocol": "SASL_PLAINTEXT", "kafka_username": "analytics", "kafka_password": "secret-password",
    }
    return Settings(**{**values, **overrides})


def test_plaintext_adds_no_client_settings() -> None:
    assert security_config(Settings()) == {}
    assert faust_credentials(Settings()) is None


def test_sasl_client_settings() -> None:
    assert security_config(sasl_settings()) == {
        "security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "PLAIN",
        "sasl.username": "analytics", "sasl.password": "secret-password",
    }


def test_sasl_faust_credentials() -> None:
    credentials = faust_credentials(sasl_settings(kafka_sasl_mechanism="SCRAM-SHA-512"))
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.username == "analytics"
    assert credentials.password == "secret-password"
    assert credentials.mechanism.value == "SCRAM-SHA-512"
    assert credentials.ssl_context is None


def test_sasl_ssl_faust_credentials_use_tls() -> None:
    credentials = faust_credentials(sasl_settings(kafka_security_protocol="SASL_SSL"))
    assert credentials is not None
    assert credentials.protocol.value == "SASL_SSL"


def test_sasl_without_username_raises() -> None:
    with pytest.raises(ClinopsError, match="CLINOPS_KAFKA_USERNAME is not set"):
        security_config(sasl_settings(kafka_username=None))


def test_sasl_without_password_raises() -> None:
    with pytest.raises(ClinopsError, match="CLINOPS_KAFKA_PASSWORD is not set"):
        faust_credentials(sasl_settings(kafka_password=None))


def test_settings_repr_hides_password() -> None:
    assert "secret-password" not in repr(sasl_settings())


def test_settings_read_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLINOPS_KAFKA_SECURITY_PROTOCOL", "SASL_PLAINTEXT")
    monkeypatch.setenv("CLINOPS_KAFKA_USERNAME", "feed")
    monkeypatch.setenv("CLINOPS_KAFKA_PASSWORD", "from-environment")
    config = security_config(Settings())
    assert config["sasl.username"] == "feed"
    assert config["sasl.password"] == "from-environment"


def test_unknown_security_protocol_rejected() -> None:
    with pytest.raises(ValueError):
        Settings(kafka_security_protocol="SSL")


def test_passwords_generated_once_owner_only(tmp_path: Path) -> None:
    path = tmp_path / sasl.PASSWORD_FILE_NAME
    first = sasl.load_or_create_passwords(path, ("admin", "feed"))
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sasl.load_or_create_passwords(path, ("admin", "feed")) == first
    assert first["admin"] != first["feed"]


def test_passwords_added_for_new_user(tmp_path: Path) -> None:
    path = tmp_path / sasl.PASSWORD_FILE_NAME
    first = sasl.load_or_create_passwords(path, ("admin",))
    both = sasl.load_or_create_passwords(path, ("admin", "clinician"))
    assert both["admin"] == first["admin"]
    assert sasl.PASSWORD_PATTERN.fullmatch(both["clinician"])


def test_password_with_quote_rejected(tmp_path: Path) -> None:
    path = tmp_path / sasl.PASSWORD_FILE_NAME
    path.write_text(json.dumps({"admin": 'abc"def0123456789xyz'}))
    with pytest.raises(sasl.CredentialsError, match="invalid"):
        sasl.read_passwords(path)


def test_missing_password_file_raises(tmp_path: Path) -> None:
    with pytest.raises(sasl.CredentialsError, match="--secured"):
        sasl.read_passwords(tmp_path / sasl.PASSWORD_FILE_NAME)


def test_controller_jaas_accepts_only_admin() -> None:
    passwords = {"admin": "a" * 20, "feed": "f" * 20}
    jaas = sasl.broker_jaas_config(passwords, ("admin",))
    assert jaas.startswith("org.apache.kafka.common.security.plain.PlainLoginModule required ")
    assert f'user_admin="{"a" * 20}"' in jaas
    assert "user_feed" not in jaas
    assert jaas.endswith(";")


def test_secured_properties_replace_listeners(tmp_path: Path) -> None:
    broker = LocalBroker(tmp_path, port=39500, controller_port=39501, secured=True)
    properties = broker._render_secured_properties()
    keys = [line.split("=", 1)[0] for line in properties.splitlines() if "=" in line and not line.startswith("#")]
    assert len(keys) == len(set(keys))
    assert "listeners=SASL_PLAINTEXT://127.0.0.1:39500,CONTROLLER://127.0.0.1:39501" in properties
    assert "allow.everyone.if.no.acl.found=false" in properties
    assert "listener.security.protocol.map=CONTROLLER:SASL_PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT" in properties


def test_replace_properties_keeps_other_keys() -> None:
    assert replace_properties("a=1\n# c\nb=2\n", "b=3\n") == "a=1\n# c\n\nb=3\n"


@pytest.mark.parametrize("role", [ANALYTICS, CLINICIAN, FEED])
def test_only_pseudonymizer_reads_identified(role: Role) -> None:
    read = {b.name for b in role_bindings(role) if b.restype == ResourceType.TOPIC and b.operation == AclOperation.READ}
    assert read.isdisjoint(IDENTIFIED)


def test_pseudonymizer_reads_identified_inputs() -> None:
    read = {b.name for b in role_bindings(PSEUDONYMIZER) if b.operation == AclOperation.READ}
    assert {BEDSIDE_VITALS.name, CLINICAL_OUTCOMES.name} <= read


def test_analytics_writes_nothing_identified() -> None:
    written = {b.name for b in role_bindings(ANALYTICS) if b.operation == AclOperation.WRITE}
    assert written.isdisjoint(IDENTIFIED)
    assert VITALS_PSEUDONYMIZED.name not in written


def test_role_users_are_unique() -> None:
    users = [role.user for role in ROLES]
    assert len(users) == len(set(users))
    assert sasl.ADMIN_USER not in users
