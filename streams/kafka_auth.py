"""Kafka client security from the process settings, for librdkafka and for Faust."""

from __future__ import annotations

import ssl

import faust

from schemas.errors import ClinopsError
from streams.settings import Settings


def security_config(settings: Settings) -> dict[str, str]:
    """Return the librdkafka security settings: empty for PLAINTEXT, else the SASL ones.

    Raises ClinopsError when a SASL protocol is set without a username or password.
    """
    if settings.kafka_security_protocol == "PLAINTEXT":
        return {}
    username, password = _sasl_login(settings)
    return {
        "security.protocol": settings.kafka_security_protocol,
        "sasl.mechanism": settings.kafka_sasl_mechanism,
        "sasl.username": username,
        "sasl.password": password,
    }


def faust_credentials(settings: Settings) -> faust.SASLCredentials | None:
    """Return Faust's broker credentials: None for PLAINTEXT, else SASL with TLS for SASL_SSL.

    Raises ClinopsError when a SASL protocol is set without a username or password.
    """
    if settings.kafka_security_protocol == "PLAINTEXT":
        return None
    username, password = _sasl_login(settings)
    # NOTE: SASL_SSL trusts the system's certificate authorities. No test covers it,
    # because the local broker listens without TLS.
    tls = ssl.create_default_context() if settings.kafka_security_protocol == "SASL_SSL" else None
    return faust.SASLCredentials(
        username=username, password=password, mechanism=settings.kafka_sasl_mechanism, ssl_context=tls
    )


def _sasl_login(settings: Settings) -> tuple[str, str]:
    protocol = settings.kafka_security_protocol
    if not settings.kafka_username:
        raise ClinopsError(
            f"CLINOPS_KAFKA_SECURITY_PROTOCOL is {protocol}, but CLINOPS_KAFKA_USERNAME is not set; "
            "set it and CLINOPS_KAFKA_PASSWORD to the client's SASL login"
        )
    if settings.kafka_password is None:
        raise ClinopsError(
            f"CLINOPS_KAFKA_SECURITY_PROTOCOL is {protocol}, but CLINOPS_KAFKA_PASSWORD is not set "
            f"for the SASL user {settings.kafka_username!r}"
        )
    return settings.kafka_username, settings.kafka_password.get_secret_value()
