"""Follow the alert topic and show each alert as it arrives."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Mapping

from confluent_kafka import Consumer, KafkaError
from pydantic import ValidationError

from schemas.errors import DecodeError
from schemas.models import DeteriorationAlert
from streams.topics import ALERTS

log = logging.getLogger(__name__)


def format_alert(alert: DeteriorationAlert) -> str:
    """Render one alert as a line for a clinician's console."""
    news2 = "NEWS2 -" if alert.news2 is None else f"NEWS2 {alert.news2}{' (partial)' if alert.news2_partial else ''}"
    model = "model -" if alert.model_risk is None else f"model {alert.model_risk:.2f}"
    observed = alert.observed_at.strftime("%Y-%m-%d %H:%MZ")
    line = (f"[{alert.severity.value:<6}] {observed} {alert.ward:<5} {alert.pseudonym}  {news2}  {model}  "
            f"{', '.join(alert.reasons)}  alert {alert.alert_id}")
    if alert.explanations:
        line += "\n         " + "; ".join(alert.explanations)
    return line


def follow_alerts(
    bootstrap_servers: str,
    on_alert: Callable[[DeteriorationAlert], None],
    *,
    from_beginning: bool = False,
    max_alerts: int | None = None,
    idle_timeout_s: float | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    client_config: Mapping[str, str] | None = None,
) -> int:
    """Call ``on_alert`` for each alert until ``max_alerts``, ``idle_timeout_s`` without
    one, or ``should_stop()``; return how many alerts were shown.

    ``client_config`` adds librdkafka settings such as SASL credentials."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            # A fresh group per console, so that every console receives every alert.
            "group.id": f"clinops-alerts-console-{uuid.uuid4()}",
            "auto.offset.reset": "earliest" if from_beginning else "latest",
            "enable.auto.commit": False,
            **(client_config or {}),
        }
    )
    consumer.subscribe([ALERTS.name])
    shown = 0
    last_seen = time.monotonic()
    try:
        while not should_stop():
            if max_alerts is not None and shown >= max_alerts:
                break
            if idle_timeout_s is not None and time.monotonic() - last_seen > idle_timeout_s:
                break
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error():
                if message.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("alert consumer error: %s", message.error())
                continue
            last_seen = time.monotonic()
            try:
                alert = DeteriorationAlert.from_avro(message.value())
            except (DecodeError, ValidationError) as exc:
                log.warning("skipped an undecodable alert at %s/%d/%d: %s", message.topic(), message.partition(), message.offset(), exc)
                continue
            on_alert(alert)
            shown += 1
    finally:
        consumer.close()
    return shown
