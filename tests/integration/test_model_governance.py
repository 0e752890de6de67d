"""Champion and challenger on a real worker: shadow scores, the registry, approval, rollback.

The test runs its own broker, because the decision log is one topic per cluster and a
promotion here must not change the champion of the session's worker.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from clinops.worker_client import worker_health
from clinops.worker_process import start_worker, stop_worker
from infra.kafka.launcher import LocalBroker
from processors.risk_model import MODEL_SPECS
from processors.vault import open_vault
from schemas.codec import registry
from streams.producer import EventProducer
from streams.settings import PROJECT_ROOT, Settings
from streams.sources.physionet import list_stays
from streams.sources.replay import load_stays, replay, replayed_monitors
from streams.topics import AUDIT_EVENTS, RISK_SCORES, create_topics
from tests.conftest import SAMPLE_DIR
from tests.integration.conftest import REPLAY_START, TEST_WORKER_PORT
from tests.integration.helpers import audit_rows, read_topic, wait_for

pytestmark = pytest.mark.integration

BROKER_PORT = int(os.environ.get("CLINOPS_TEST_GOVERNANCE_BROKER_PORT", "39097"))
WORKER_PORT = TEST_WORKER_PORT + 4
CHAMPION = MODEL_SPECS["logreg"].version
CHALLENGER = MODEL_SPECS["logreg-weighted"].version
# Enough stays for both models to pass their warm-up of 200 labels with positives (6 septic stays).
FIRST_STAYS = 100
LATER_STAYS = 20


@dataclass(frozen=True)
class Governed:
    env: dict[str, str]
    settings: Settings
    data_dir: Path
    process: subprocess.Popen


@pytest.fixture(scope="module")
def governed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Governed]:
    """A broker and a worker whose champion is logreg and whose challenger is logreg-weighted."""
    root = tmp_path_factory.mktemp("governance")
    broker = LocalBroker(root / "kafka", port=BROKER_PORT, controller_port=BROKER_PORT + 1,
                         jars=PROJECT_ROOT / "var" / "kafka" / "jars")
    broker.start()
    data_dir = root / "data"
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "CLINOPS_DATA_DIR": str(data_dir),
        "CLINOPS_WORKER_PORT": str(WORKER_PORT),
        "CLINOPS_APP_ID": f"clinops-governance-{uuid.uuid4().hex[:8]}",
        "CLINOPS_MODEL": "logreg",
        "CLINOPS_CHALLENGERS": "logreg-weighted",
        "CLINOPS_MODEL_SAVE_INTERVAL_S": "2",
        "CLINOPS_AUDIT_CHECKPOINT_INTERVAL_S": "1",
        "CLINOPS_ACCESS_FILE": str(PROJECT_ROOT / "config" / "access.toml"),
    }
    settings = Settings(kafka_bootstrap_servers=broker.bootstrap_servers, data_dir=data_dir, worker_port=WORKER_PORT)
    try:
        create_topics(broker.bootstrap_servers)
        process = start_worker(env, WORKER_PORT, root / "worker.log", cwd=PROJECT_ROOT)
        try:
            yield Governed(env, settings, data_dir, process)
        finally:
            stop_worker(process)
    finally:
        broker.stop()


def replay_stays(settings: Settings, first: int, count: int) -> None:
    """Replay stays ``first`` to ``first + count`` of the sample from registered monitors."""
    stays = load_stays(list_stays(SAMPLE_DIR, first + count))[first:]
    with open_vault(settings) as vault:
        vault.register_devices(replayed_monitors(stays), "governance-test")
    stats = replay(stays, EventProducer(settings.bootstrap_servers), speed=None, start=REPLAY_START,
                   run_id=uuid.uuid4().hex)
    assert stats.rows > 0


def clinops(governed: Governed, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "clinops.cli", *args], env=governed.env, cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)


def health(governed: Governed) -> dict:
    found = worker_health(WORKER_PORT)
    assert found is not None, "the governance worker stopped responding"
    return found


def champion_is(governed: Governed, version: str) -> bool:
    return wait_for(lambda: health(governed)["model"]["version"], lambda found: found == version, 30.0) == version


def scores(governed: Governed) -> list[dict]:
    return [registry.decode(message.value())[1] for message in read_topic(governed.settings.bootstrap_servers,
                                                                          RISK_SCORES.name)]


def governance_actions(governed: Governed) -> list[str]:
    return [row[0] for row in audit_rows(WORKER_PORT, "SELECT action FROM audit.model_governance")]


def test_shadow_promotion_and_rollback(governed: Governed) -> None:
    replay_stays(governed.settings, 0, FIRST_STAYS)
    ready = wait_for(lambda: health(governed), lambda h: h["model"]["ready"] and h["challengers"][0]["ready"], 180.0)
    assert ready["model"]["version"] == CHAMPION
    assert ready["challengers"][0]["version"] == CHALLENGER
    assert ready["challengers"][0]["ready"], ready

    # Shadow: the champion decides, the challenger's risk rides along and raises nothing.
    before = wait_for(lambda: scores(governed), lambda found: any(s["challenger_risks"] for s in found))
    shadowed = [s for s in before if s["challenger_risks"]]
    assert shadowed, "no risk score carries the challenger's risk"
    assert all(s["model_version"] == CHAMPION for s in shadowed)
    assert all(set(s["challenger_risks"]) == {CHALLENGER} for s in shadowed)
    alerts = audit_rows(WORKER_PORT, "SELECT DISTINCT JSONExtractString(details, 'model_version') FROM audit_events "
                                     "WHERE action = 'alert.raised' AND JSONExtractString(details, 'model_version') != ''")
    assert [row[0] for row in alerts] in ([], [CHAMPION])
    shadow_audits = wait_for(lambda: audit_rows(WORKER_PORT, "SELECT count() FROM audit_events WHERE action = 'risk.scored' "
                                                             "AND JSONHas(details, 'challenger_risks')")[0][0],
                             lambda count: int(count) > 0)
    assert int(shadow_audits) > 0, "the risk.scored audit events do not keep the challenger's risk"

    # The registry contains both versions, with the worker's records and a saved artefact.
    rows = wait_for(lambda: audit_rows(WORKER_PORT, "SELECT model_version, kind, sha256, code_version, labels, features "
                                                    f"FROM audit.model_registry WHERE model_version = '{CHALLENGER}'"),
                    lambda found: len(found) == 1 and len(found[0][2]) == 64 and int(found[0][4]) >= 200)
    assert len(rows) == 1
    _, kind, sha256, code_version, labels, features = rows[0]
    assert kind == "logreg-weighted"
    assert len(sha256) == 64
    assert code_version
    assert int(labels) >= 200
    assert int(features) > 50
    listing = clinops(governed, "models", "list")
    assert listing.returncode == 0, listing.stdout + listing.stderr
    champion_line = next(line for line in listing.stdout.splitlines() if line.startswith(CHAMPION))
    challenger_line = next(line for line in listing.stdout.splitlines() if line.startswith(CHALLENGER))
    assert " champion " in champion_line
    assert " challenger " in challenger_line
    # The artefact's digest is shown shortened; the worker saves every 2 s, so it may be a newer one.
    assert re.search(r" [0-9a-f]{16} ", challenger_line), challenger_line

    # Approval needs an approver's role; a refusal changes nothing and is audited.
    refused = clinops(governed, "models", "approve", CHALLENGER, "--by", "student.rossi", "--reason", "it looks better")
    assert refused.returncode == 3, refused.stdout + refused.stderr
    approved = clinops(governed, "models", "approve", CHALLENGER, "--by", "dr.osei",
                       "--reason", "higher progressive AUROC over the shadow period")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert champion_is(governed, CHALLENGER)

    # After the promotion the new champion decides and the old one scores in shadow.
    seen = {s["event_id"] for s in scores(governed)}
    replay_stays(governed.settings, FIRST_STAYS, LATER_STAYS)
    after = wait_for(lambda: [s for s in scores(governed) if s["event_id"] not in seen], lambda found: len(found) > 100)
    assert after
    assert all(s["model_version"] == CHALLENGER for s in after)
    assert any(set(s["challenger_risks"]) == {CHAMPION} for s in after)

    # One command rolls back; with nothing left to roll back, the next one is refused.
    rolled = clinops(governed, "models", "rollback", "--by", "dr.osei", "--reason", "too many alerts on the ward")
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert champion_is(governed, CHAMPION)
    again = clinops(governed, "models", "rollback", "--by", "dr.osei", "--reason", "second rollback for the test")
    assert again.returncode == 3, again.stdout + again.stderr

    expected = ["model.promotion.refused", "model.promotion.approved", "model.promoted", "model.rollback.approved",
                "model.rolled_back", "model.rollback.refused"]
    actions = wait_for(lambda: governance_actions(governed), lambda found: len(found) >= len(expected))
    assert sorted(actions) == sorted(expected)


def test_decisions_name_their_approval(governed: Governed) -> None:
    """Every champion change that a worker applied points to a person's approval event."""
    events = [json.loads(registry.decode(m.value())[1]["details"]) | {"action": registry.decode(m.value())[1]["action"],
                                                                      "event_id": str(registry.decode(m.value())[1]["event_id"])}
              for m in read_topic(governed.settings.bootstrap_servers, AUDIT_EVENTS.name)]
    approvals = {e["event_id"] for e in events if e["action"] in ("model.promotion.approved", "model.rollback.approved")}
    applied = [e for e in events if e["action"] in ("model.promoted", "model.rolled_back")]
    assert applied, "no champion change was applied; run after the promotion test"
    assert all(e["approval_event_id"] in approvals for e in applied)


def test_artefact_matches_last_checkpoint(governed: Governed) -> None:
    stop_worker(governed.process)
    checkpoints: dict[str, str] = {}
    for message in read_topic(governed.settings.bootstrap_servers, AUDIT_EVENTS.name):
        event = registry.decode(message.value())[1]
        if event["action"] == "model.checkpointed":
            checkpoints[event["subject_id"]] = json.loads(event["details"])["sha256"]
    assert set(checkpoints) == {CHAMPION, CHALLENGER}
    for version, sha256 in checkpoints.items():
        assert hashlib.sha256((governed.data_dir / "models" / f"{version}.pkl").read_bytes()).hexdigest() == sha256
