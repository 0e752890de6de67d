"""The audit trail on the real broker: verify and prove after a replay, and exactly-once
persistence while the writer is killed with SIGKILL and restarted."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from clinops.worker_client import query_worker, worker_health
from clinops.worker_process import stop_worker
from processors.audit_chain import canonical_bytes, leaf_hash
from processors.signing import verify_signature
from schemas.models import AuditEvent
from streams.producer import EventProducer
from streams.settings import PROJECT_ROOT
from streams.topics import AUDIT_EVENTS
from tests.integration.conftest import TEST_WORKER_PORT, Replayed, RunningWorker
from tests.integration.helpers import audit_rows, read_topic, wait_for
from tests.unit.test_audit_writer import rfc9162_verify

pytestmark = pytest.mark.integration

KILL_TEST_PORT = TEST_WORKER_PORT + 1
KILL_EVENTS = 100_000


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clinops.cli", *args], env=env, capture_output=True, text=True,
                          timeout=300, check=False, cwd=PROJECT_ROOT)


def test_verify_passes_after_replay(replayed: Replayed, worker: RunningWorker) -> None:
    wait_for(lambda: audit_rows(worker.settings.worker_port, "SELECT count() FROM checkpoints")[0][0], lambda n: int(n) > 0)
    result = run_cli(worker.env, "audit", "verify")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "audit verify: passed" in result.stdout
    assert "signed checkpoint" in result.stdout


def test_prove_prints_checkable_proof(replayed: Replayed, worker: RunningWorker) -> None:
    port = worker.settings.worker_port
    (chain, size), = wait_for(lambda: audit_rows(port, "SELECT chain, max(tree_size) FROM checkpoints GROUP BY chain ORDER BY chain LIMIT 1"), bool)
    event_id, = audit_rows(port, f"SELECT toString(event_id) FROM audit_events WHERE chain = {chain} AND seq = {int(size) // 2}")[0]

    result = run_cli(worker.env, "audit", "prove", event_id)
    assert result.returncode == 0, result.stderr
    proof = json.loads(result.stdout)

    names = ("event_id", "occurred_at", "emitted_at", "recorded_at", "actor", "action", "subject_type", "subject_id", "input_sha256", "details")
    row = audit_rows(port, f"SELECT {', '.join('toString(event_id)' if n == 'event_id' else n for n in names)} FROM audit_events WHERE event_id = '{event_id}'")[0]
    entry = dict(zip(names, row))
    for name in ("occurred_at", "emitted_at", "recorded_at"):
        entry[name] = datetime.fromisoformat(entry[name]).replace(tzinfo=timezone.utc)
    leaf = leaf_hash(canonical_bytes(entry))
    path = [bytes.fromhex(node) for node in proof["audit_path"]]
    assert rfc9162_verify(proof["leaf_index"], proof["tree_size"], leaf, path, bytes.fromhex(proof["root"]))
    checkpoint = proof["checkpoint"]
    public_key = (Path(worker.env["CLINOPS_DATA_DIR"]) / "keys" / "audit-signing.pub").read_text().strip()
    assert checkpoint["public_key"] == public_key
    assert verify_signature(bytes.fromhex(public_key), bytes.fromhex(checkpoint["signature"]), checkpoint["message"].encode())


def test_prove_unknown_event_fails_clearly(worker: RunningWorker) -> None:
    result = run_cli(worker.env, "audit", "prove", str(uuid.uuid4()))
    assert result.returncode == 2
    assert "no audit event" in result.stderr


def start_audit_writer(env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """Start an audit-only worker without waiting for it, so kills can land during start-up."""
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "clinops.cli", "worker", "--stages", "audit"],
                                env=env, stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)


def produce_audit_events(bootstrap: str, count: int, duplicates_every: int) -> None:
    """Produce ``count`` distinct audit events over a few seconds, repeating some, as an
    upstream stage does when it is redelivered."""
    producer = EventProducer(bootstrap)
    occurred = datetime(2026, 4, 1, tzinfo=timezone.utc)
    run = uuid.uuid4().hex
    sent = []
    for i in range(count):
        event = AuditEvent(
            event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{run}/{i}"), occurred_at=occurred + timedelta(seconds=i),
            emitted_at=occurred, actor="kill-test", action="kill.test", subject_type="patient",
            subject_id=f"p-kill-{i % 997}", input_sha256="0" * 64, details=json.dumps({"i": i}),
        )
        producer.send(AUDIT_EVENTS, event.subject_id, event)
        sent.append(event)
        if i % duplicates_every == 0 and i:
            repeat = sent[i - 50]
            producer.send(AUDIT_EVENTS, repeat.subject_id, repeat)
        if i % 5000 == 0:
            time.sleep(0.25)  # spread the load so the kills land mid-stream
    producer.flush()


def test_sigkill_loses_and_repeats_nothing(bootstrap_servers: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap_servers,
        "CLINOPS_DATA_DIR": str(tmp_path),
        "CLINOPS_WORKER_PORT": str(KILL_TEST_PORT),
        "CLINOPS_APP_ID": f"clinops-kill-{uuid.uuid4().hex[:8]}",
        "CLINOPS_AUDIT_CHECKPOINT_EVERY": "5000",
        "CLINOPS_AUDIT_CHECKPOINT_INTERVAL_S": "1",
    }
    log_path = tmp_path / "writer.log"
    producer = threading.Thread(target=produce_audit_events, args=(bootstrap_servers, KILL_EVENTS, 97))
    rng = random.Random(2026)
    kills = 0

    process = start_audit_writer(env, log_path)
    producer.start()
    try:
        while producer.is_alive() or kills < 4:
            time.sleep(rng.uniform(1.0, 4.0))
            process.send_signal(signal.SIGKILL)
            process.wait()
            kills += 1
            process = start_audit_writer(env, log_path)
        producer.join()

        expected = {
            str(AuditEvent.from_avro(m.value()).event_id)
            for m in read_topic(bootstrap_servers, AUDIT_EVENTS.name, timeout_s=120)
        }
        wait_for(lambda: worker_health(KILL_TEST_PORT), bool, timeout_s=180)
        count, distinct = wait_for(
            lambda: [int(v) for v in query_worker(KILL_TEST_PORT, "SELECT count(), uniqExact(event_id) FROM audit_events").rows[0]],
            lambda found: found[0] >= len(expected),
            timeout_s=300,
        )
        assert kills >= 4
        assert distinct == len(expected)
        assert count == len(expected), "an audit event was written twice"

        gaps = query_worker(KILL_TEST_PORT, "SELECT chain, count(), max(seq) + 1, uniqExact(seq) FROM audit_events GROUP BY chain").rows
        for chain, rows, next_seq, distinct_seqs in gaps:
            assert int(rows) == int(next_seq) == int(distinct_seqs), f"chain {chain} has a gap or a repeated seq"

        wait_for(lambda: run_cli(env, "audit", "verify"), lambda result: result.returncode == 0, timeout_s=60)
        result = run_cli(env, "audit", "verify")
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        stop_worker(process)

    # A clean stop signs every entry: each chain's newest checkpoint covers all its rows.
    coverage = run_cli(env, "audit", "sql", "--format", "json",
                       "SELECT chain, count() AS rows, (SELECT max(tree_size) FROM checkpoints AS c WHERE c.chain = e.chain) "
                       "FROM audit_events AS e GROUP BY chain")
    assert coverage.returncode == 0, coverage.stderr
    for chain, rows, signed in json.loads(coverage.stdout)["rows"]:
        assert int(signed) == int(rows), f"chain {chain}: {rows} rows, newest checkpoint covers {signed}"


@pytest.mark.parametrize(
    "view",
    ["patient_timeline(pseudonym = '{pseudonym}')", "alert_lifecycle", "model_decisions", "drift_history"],
)
def test_audit_views_return_rows(view: str, replayed: Replayed, worker: RunningWorker) -> None:
    port = worker.settings.worker_port
    pseudonym, = audit_rows(port, "SELECT JSONExtractString(details, 'pseudonym') FROM audit_events WHERE action = 'alert.raised' LIMIT 1")[0]
    rows = audit_rows(port, f"SELECT * FROM {view.format(pseudonym=pseudonym)}")
    assert rows


def test_alert_lifecycle_links_alert_and_onset(replayed: Replayed, worker: RunningWorker) -> None:
    rows = audit_rows(worker.settings.worker_port, "SELECT alert_id, pseudonym, severity, onset_at FROM alert_lifecycle")
    assert all(severity in ("MEDIUM", "HIGH") for _, _, severity, _ in rows)
    assert all(pseudonym.startswith("p-") for _, pseudonym, _, _ in rows)
    # The 20 sample stays include septic ones whose alerts preceded the onset; stays
    # without an onset have NULL, not a default date.
    onsets = [onset for *_, onset in rows]
    assert any(onset is not None for onset in onsets)
    assert any(onset is None for onset in onsets)
    assert not any(onset is not None and onset.startswith("1970") for onset in onsets)


def test_reidentification_view_exists(worker: RunningWorker) -> None:
    result = query_worker(worker.settings.worker_port, "SELECT * FROM reidentifications")
    assert result.columns == ["occurred_at", "clinician", "action", "pseudonym", "alert_id", "reason", "refusal"]
