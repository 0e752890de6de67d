"""No direct identifier after the pseudonymizer: not in topics, the audit store or logs."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid

import pytest

from schemas.codec import registry
from schemas.errors import DecodeError
from schemas.models import RiskScore
from streams.producer import EventProducer
from streams.settings import PROJECT_ROOT
from streams.sources.identities import Identity, synthesize_identity
from streams.sources.replay import admission_time
from streams.topics import BEDSIDE_VITALS, CATALOGUE, MODEL_DECISIONS, RISK_SCORES, VITALS_PSEUDONYMIZED
from tests.integration.conftest import REPLAY_START, Replayed, RunningWorker
from tests.integration.helpers import audit_rows, read_topic, wait_for

pytestmark = pytest.mark.integration



@pytest.fixture(scope="module")
def identities(replayed: Replayed) -> list[Identity]:
    return [
        synthesize_identity(stay.stay_id, stay.sex, stay.age, admission_time(stay.stay_id, REPLAY_START), stay.unit)
        for stay in replayed.stays
    ]


def identifier_strings(identities: list[Identity]) -> list[str]:
    strings = []
    for identity in identities:
        family_name = identity.name.split()[-1]
        strings += [identity.name, family_name, identity.record_number, identity.birth_date.isoformat(), identity.bed, identity.device_id]
    return strings


def test_identified_topics_carry_identifiers(replayed: Replayed, worker: RunningWorker, identities: list[Identity]) -> None:
    # The search below must be able to find an identifier where one is.
    blob = b"".join(m.value() for m in read_topic(worker.settings.bootstrap_servers, BEDSIDE_VITALS.name))
    assert identities[0].name.encode() in blob
    assert identities[0].record_number.encode() in blob


@pytest.fixture(scope="module")
def later_stage_reject(worker: RunningWorker) -> None:
    """Send the scorer an undecodable message, so that `dead.letters` is not empty."""
    producer = EventProducer(worker.settings.bootstrap_servers)
    producer.send(VITALS_PSEUDONYMIZED, "p-garbage", b"\xc3\x01not avro")
    producer.flush()


# model.decisions carries no patient data and stays empty until someone promotes a model.
@pytest.mark.parametrize("topic", [spec.name for spec in CATALOGUE if not spec.identified and spec is not MODEL_DECISIONS])
def test_no_identifier_in_topic(topic: str, replayed: Replayed, worker: RunningWorker, identities: list[Identity],
                                later_stage_reject: None) -> None:
    messages = wait_for(lambda: read_topic(worker.settings.bootstrap_servers, topic), bool)
    assert messages, f"{topic} is empty, so the check would prove nothing"
    text = "\n".join(message_text(m.key(), m.value()) for m in messages)
    for identifier in identifier_strings(identities):
        assert identifier not in text, f"an identifier of the replayed stays appears in {topic}"


def message_text(key: bytes | None, value: bytes) -> str:
    """Return a message as text: its key, then every decoded field.

    Searching the raw Avro bytes would find false matches: a 36-character string is
    preceded by its length byte 0x48, "H", so "H" before a UUID that starts with
    "addad" reads as the family name Haddad.
    """
    try:
        fields: object = registry.decode(value)[1]
    except DecodeError:
        fields = value
    return (key or b"").decode(errors="replace") + "\t" + json.dumps(fields, default=repr)


def test_no_identifier_in_audit_store(replayed: Replayed, worker: RunningWorker, identities: list[Identity]) -> None:
    rows = audit_rows(worker.settings.worker_port, "SELECT actor, action, subject_type, subject_id, details FROM audit_events")
    assert len(rows) > len(replayed.vitals_digests)
    text = "\n".join("\t".join(str(value) for value in row) for row in rows)
    for identifier in identifier_strings(identities):
        assert identifier not in text


def test_no_identifier_in_worker_log(replayed: Replayed, worker: RunningWorker, identities: list[Identity]) -> None:
    log_text = worker.log_path.read_text(errors="replace")
    assert "audit store open" in log_text, "the worker log is not where the test looks"
    for identifier in identifier_strings(identities):
        assert identifier not in log_text


def run_scan(worker: RunningWorker) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clinops.cli", "privacy", "scan"], env=worker.env,
                          capture_output=True, text=True, timeout=300, check=False, cwd=PROJECT_ROOT)


def test_privacy_scan_finds_nothing_after_replay(replayed: Replayed, worker: RunningWorker) -> None:
    assert len(replayed.stays) == 200
    result = run_scan(worker)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "privacy scan: 0 findings" in result.stdout
    # Record number, name, birth date and monitor serial of each of the 200 patients.
    searched = int(result.stdout.split("Searched for ")[1].split()[0])
    assert searched >= 4 * 200 - 10


ACCESS_FILE = """
[reidentification]
roles = ["physician"]

[clinicians]
"dr.test" = "physician"
"student.test" = "medical_student"
"""


@pytest.fixture(scope="module")
def access_env(worker: RunningWorker, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    path = tmp_path_factory.mktemp("access") / "access.toml"
    path.write_text(ACCESS_FILE)
    return {**worker.env, "CLINOPS_ACCESS_FILE": str(path)}


def run_reidentify(env: dict[str, str], alert_id: str, clinician: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "clinops.cli", "reidentify", alert_id, "--by", clinician, "--reason", "bedside review of a HIGH alert"],
        env=env, capture_output=True, text=True, timeout=120, check=False, cwd=PROJECT_ROOT,
    )


def reidentification_rows(worker: RunningWorker, alert_id: str, clinician: str) -> list[list]:
    return wait_for(lambda: audit_rows(
        worker.settings.worker_port,
        "SELECT action, pseudonym, reason, refusal FROM reidentifications "
        f"WHERE alert_id = '{alert_id}' AND clinician = '{clinician}'",
    ), bool)


def first_alert(replayed: Replayed, worker: RunningWorker) -> tuple[str, str]:
    rows = audit_rows(worker.settings.worker_port,
                      "SELECT subject_id, JSONExtractString(details, 'pseudonym') FROM audit_events "
                      "WHERE action = 'alert.raised' ORDER BY seq LIMIT 1")
    assert rows, "the replay raised no alert to re-identify"
    return rows[0][0], rows[0][1]


def test_reidentify_grants_allowed_role(replayed: Replayed, worker: RunningWorker, access_env: dict[str, str]) -> None:
    alert_id, pseudonym = first_alert(replayed, worker)
    identity = vault_identities(worker)[pseudonym]

    result = run_reidentify(access_env, alert_id, "dr.test")
    assert result.returncode == 0, result.stdout + result.stderr
    assert identity.record_number in result.stdout
    assert identity.name in result.stdout

    rows = reidentification_rows(worker, alert_id, "dr.test")
    assert rows == [["patient.reidentified", pseudonym, "bedside review of a HIGH alert", ""]]


def test_reidentify_refuses_other_role(replayed: Replayed, worker: RunningWorker, access_env: dict[str, str]) -> None:
    alert_id, pseudonym = first_alert(replayed, worker)
    identity = vault_identities(worker)[pseudonym]

    result = run_reidentify(access_env, alert_id, "student.test")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "medical_student may not re-identify" in result.stdout
    assert identity.record_number not in result.stdout + result.stderr
    assert identity.name not in result.stdout + result.stderr

    rows = reidentification_rows(worker, alert_id, "student.test")
    assert rows == [["reidentification.refused", pseudonym, "bedside review of a HIGH alert",
                     "the role medical_student may not re-identify patients"]]


def test_reidentify_refuses_unknown_clinician(replayed: Replayed, worker: RunningWorker, access_env: dict[str, str]) -> None:
    alert_id, _ = first_alert(replayed, worker)
    result = run_reidentify(access_env, alert_id, "visitor")
    assert result.returncode == 3, result.stdout + result.stderr
    assert "not in the access file" in result.stdout
    assert reidentification_rows(worker, alert_id, "visitor")[0][0] == "reidentification.refused"


def test_privacy_scan_finds_planted_identifier(replayed: Replayed, worker: RunningWorker, identities: list[Identity]) -> None:
    # Runs last in this module: it leaves a leaked record number in risk.scores.
    leaked = RiskScore(event_id=uuid.uuid4(), pseudonym=identities[3].record_number, observed_at=REPLAY_START,
                       news2=1, news2_parameters=5, news2_partial=True, news2_red_flag=False,
                       model_risk=None, model_version="planted", late=False)
    producer = EventProducer(worker.settings.bootstrap_servers)
    producer.send(RISK_SCORES, "planted", leaked)
    producer.flush()

    result = run_scan(worker)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FOUND topic risk.scores: 1 x record number" in result.stdout
    assert identities[3].record_number not in result.stdout


def test_erasure_keeps_audit_chain_verifying(replayed: Replayed, worker: RunningWorker, identities: list[Identity]) -> None:
    target = identities[5]
    port = worker.settings.worker_port
    known = {identity.record_number: pseudonym for pseudonym, identity in vault_identities(worker).items()}
    erased = known[target.record_number]

    result = subprocess.run([sys.executable, "-m", "clinops.cli", "privacy", "erase", target.record_number, "--by", "dpo-1"],
                            env=worker.env, capture_output=True, text=True, timeout=120, check=False, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stderr
    assert erased in result.stdout
    assert target.record_number not in result.stdout

    assert erased not in vault_identities(worker)
    rows = wait_for(lambda: audit_rows(port, f"SELECT actor, details FROM audit_events WHERE action = 'patient.erased' AND subject_id = '{erased}'"), bool)
    assert rows[0][0] == "dpo-1"
    assert target.record_number not in rows[0][1]
    # The pseudonym's audit history stays, and the chain still verifies.
    assert audit_rows(port, f"SELECT count() FROM audit_events WHERE subject_id = '{erased}'")[0][0] > 1
    wait_for(lambda: audit_rows(port, "SELECT count() FROM checkpoints")[0][0], lambda n: int(n) > 0)
    verify = subprocess.run([sys.executable, "-m", "clinops.cli", "audit", "verify"], env=worker.env,
                            capture_output=True, text=True, timeout=300, check=False, cwd=PROJECT_ROOT)
    assert verify.returncode == 0, verify.stdout + verify.stderr


def vault_identities(worker: RunningWorker) -> dict:
    from processors.vault import open_vault

    with open_vault(worker.settings) as vault:
        return vault.identities()
