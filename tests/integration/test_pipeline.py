"""End to end on the real broker: replay, pseudonymize, score, alert, audit, dead letters."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import uuid

import pytest

from schemas.codec import registry
from schemas.models import DeadLetter, DeteriorationAlert, RiskScore
from streams.producer import EventProducer
from streams.sources.identities import synthesize_identity
from streams.sources.physionet import list_stays
from streams.sources.replay import admission_time, load_stays
from streams.topics import ALERTS, BEDSIDE_VITALS, DEAD_LETTERS_IDENTIFIED, RISK_SCORES
from tests.conftest import SAMPLE_DIR
from tests.integration.conftest import REPLAY_START, Replayed, RunningWorker, sql_list
from tests.integration.helpers import audit_rows, count_rows_in, read_topic, wait_for

pytestmark = pytest.mark.integration

def test_replay_accounts_for_every_row(replayed: Replayed, worker: RunningWorker) -> None:
    port = worker.settings.worker_port
    by_action = count_rows_in(
        port,
        "SELECT action, count() FROM audit_events WHERE actor = 'pseudonymizer' AND input_sha256 IN ({values}) GROUP BY action",
        replayed.vitals_digests,
    )
    assert sum(by_action.values()) == len(replayed.vitals_digests)
    assert set(by_action) <= {"vitals.pseudonymized", "input.rejected"}

    scored = wait_for(
        lambda: sum(count_rows_in(
            port,
            "SELECT 'scored', uniqExact(JSONExtractString(details, 'event_id')) FROM audit_events "
            "WHERE action = 'risk.scored' AND JSONExtractString(details, 'event_id') IN ({values})",
            replayed.vitals_event_ids,
        ).values()),
        lambda count: count >= by_action.get("vitals.pseudonymized", 0),
    )
    assert scored == by_action.get("vitals.pseudonymized", 0)


def test_replay_raises_alerts(replayed: Replayed, worker: RunningWorker) -> None:
    alerts = [DeteriorationAlert.from_avro(m.value()) for m in read_topic(worker.settings.bootstrap_servers, ALERTS.name)]
    ours = [a for a in alerts if str(a.event_id) in set(replayed.vitals_event_ids)]
    assert ours, "the replayed ICU stays raised no alert"
    # An alert raised by the model alone may rest on no single vital sign, so most, not all.
    explained = sum(1 for alert in ours if alert.explanations)
    assert explained >= 0.9 * len(ours), f"only {explained} of {len(ours)} alerts name a vital sign"

    audited = count_rows_in(
        worker.settings.worker_port,
        "SELECT subject_id, count() FROM audit_events WHERE action = 'alert.raised' AND subject_id IN ({values}) GROUP BY subject_id",
        [str(a.alert_id) for a in ours],
    )
    assert len(audited) == len({a.alert_id for a in ours})


def test_alerts_follow_hysteresis(replayed: Replayed, worker: RunningWorker) -> None:
    alerts = [DeteriorationAlert.from_avro(m.value()) for m in read_topic(worker.settings.bootstrap_servers, ALERTS.name)]
    ours = [a for a in alerts if str(a.event_id) in set(replayed.vitals_event_ids)]
    scores = [RiskScore.from_avro(m.value()) for m in read_topic(worker.settings.bootstrap_servers, RISK_SCORES.name)]
    ours_scores = [s for s in scores if str(s.event_id) in set(replayed.vitals_event_ids)]
    # Hysteresis: far fewer alerts than observations at or above the MEDIUM threshold.
    above = [s for s in ours_scores if (s.news2 or 0) >= 5 or s.news2_red_flag]
    assert len(ours) < len(above)


def test_model_performance_is_audited(replayed: Replayed, worker: RunningWorker) -> None:
    rows = audit_rows(
        worker.settings.worker_port,
        "SELECT details FROM audit_events WHERE action = 'model.performance' "
        "ORDER BY JSONExtractUInt(details, 'labels') DESC LIMIT 1",
    )
    metrics = json.loads(rows[0][0])
    scored_rows = sum(len(stay.rows) for stay in replayed.stays)
    # Scored observations are labelled when their stay is discharged. A few may miss
    # their label when a discharge is released early while a backlog is consumed.
    assert metrics["labels"] <= scored_rows
    assert metrics["labels"] >= 0.95 * scored_rows
    assert metrics["news2_auroc"] is not None
    assert 0.0 <= metrics["news2_auroc"] <= 1.0


def test_bad_inputs_become_dead_letters(worker: RunningWorker) -> None:
    stay = load_stays(list_stays(SAMPLE_DIR, 1))[0]
    identity = synthesize_identity(stay.stay_id, stay.sex, stay.age, admission_time(stay.stay_id, REPLAY_START), stay.unit)
    implausible = registry.encode(BEDSIDE_VITALS.schema, {
        "event_id": uuid.uuid4(), "source": "test", "record_number": identity.record_number,
        "patient_name": identity.name, "birth_date": identity.birth_date, "sex": None, "ward": "MICU",
        "bed": "MICU-01", "device_id": "mon-test", "observed_at": REPLAY_START,
        "spo2": 0.97, "heart_rate": 80.0,
    })
    garbage = b"\xc3\x01" + b"\x00" * 8 + b"not avro"
    unknown_monitor = registry.encode(BEDSIDE_VITALS.schema, {
        "event_id": uuid.uuid4(), "source": "test", "record_number": identity.record_number,
        "patient_name": identity.name, "birth_date": identity.birth_date, "sex": None, "ward": "MICU",
        "bed": "MICU-01", "device_id": "mon-unregistered", "observed_at": REPLAY_START,
        "spo2": 97.0, "heart_rate": 80.0,
    })

    producer = EventProducer(worker.settings.bootstrap_servers)
    producer.send(BEDSIDE_VITALS, identity.record_number, implausible)
    producer.send(BEDSIDE_VITALS, "garbage", garbage)
    producer.send(BEDSIDE_VITALS, identity.record_number, unknown_monitor)
    producer.flush()

    digests = [hashlib.sha256(payload).hexdigest() for payload in (implausible, garbage, unknown_monitor)]
    rows = wait_for(
        lambda: audit_rows(
            worker.settings.worker_port,
            f"SELECT input_sha256, details FROM audit_events WHERE action = 'input.rejected' AND input_sha256 IN ({sql_list(digests)})",
        ),
        lambda found: len(found) >= 3,
    )
    details = {digest: json.loads(text) for digest, text in rows}
    assert details[digests[0]]["error_type"] == "implausible_value"
    assert "spo2" in details[digests[0]]["reason"]
    assert details[digests[1]]["error_type"] == "decode"
    assert details[digests[2]]["error_type"] == "unknown_device"
    assert identity.name not in json.dumps(details)
    assert "mon-unregistered" not in json.dumps(details)

    letters = [DeadLetter.from_avro(m.value()) for m in read_topic(worker.settings.bootstrap_servers, DEAD_LETTERS_IDENTIFIED.name)]
    by_payload = {hashlib.sha256(letter.payload).hexdigest(): letter for letter in letters}
    assert by_payload[digests[0]].stage == "pseudonymizer"
    assert by_payload[digests[0]].error_type == "implausible_value"
    assert by_payload[digests[1]].error_type == "decode"
    assert by_payload[digests[2]].error_type == "unknown_device"


def test_audit_sql_cli_queries_running_worker(replayed: Replayed, worker: RunningWorker) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "clinops.cli", "audit", "sql", "SELECT action, count() FROM audit_events GROUP BY action", "--format", "json"],
        env=worker.env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 0, result.stderr
    actions = {action for action, _ in json.loads(result.stdout)["rows"]}
    assert {"vitals.pseudonymized", "risk.scored", "alert.raised", "model.performance"} <= actions


def test_audit_sql_cli_rejects_writes(worker: RunningWorker) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "clinops.cli", "audit", "sql", "ALTER TABLE audit_events DELETE WHERE 1"],
        env=worker.env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert result.returncode == 2
    assert "only reading statements" in result.stderr
