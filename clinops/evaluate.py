"""``clinops evaluate``: replay PhysioNet stays through the real pipeline and judge the model beside NEWS2.

The evaluation runs in a temporary folder with a broker and a worker of its own. The
model therefore starts untrained and learns only from the replay, as it would in a new
hospital, and the user's broker and stores are left alone. The steps:

1. start a local broker on free ports and a worker with the pseudonymizer and the
   scorer (the audit writer is left out: it does not change a score);
2. register the stays' monitors, replay every stay at full speed and wait until the
   scorer has handled every event;
3. read every risk score back from ``risk.scores`` and join it to the stay's
   SepsisLabel of that hour;
4. compute AUROC, AUPRC, the PhysioNet 2019 normalized utility, and per alert
   threshold the sensitivity, alerts per 100 patient-days and lead time, for the
   model and for NEWS2 at 5 and 7.

Each prediction was made before its label reached the model (progressive validation).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from clinops.metrics import Stay, alert_figures, auprc, auroc, normalized_utility
from clinops.progress import Progress
from clinops.worker_client import worker_health
from clinops.worker_process import start_worker, stop_worker
from infra.kafka.launcher import LocalBroker
from processors.alerting import AlertState
from processors.model_service import check_kinds
from processors.risk_model import MODEL_SPECS
from processors.vault import open_vault
from schemas.codec import registry
from schemas.errors import ClinopsError
from streams.producer import EventProducer
from streams.settings import PROJECT_ROOT, Settings
from streams.sources.physionet import Stay as PhysionetStay
from streams.sources.physionet import list_stays
from streams.sources.replay import load_stays, merged_events, replay, replayed_monitors
from streams.topic_reader import read_topic
from streams.topics import BEDSIDE_VITALS, RISK_SCORES, create_topics

REPLAY_START = datetime(2026, 1, 1, tzinfo=timezone.utc)
EVALUATION_SAVE_INTERVAL_S = 3600
RUN_ID = "evaluate"
NEWS2_THRESHOLDS = (5, 7)
# The scorer handles a few thousand events a second on 2 cores; this bounds a stuck run.
PROCESSING_TIMEOUT_S = 3 * 3600.0


@dataclass
class ScoredRow:
    """One hourly row of a stay with its label and the scores the pipeline gave it."""

    label: bool
    model_risk: float | None = None
    news2: int | None = None
    challenger_risks: dict[str, float] = field(default_factory=dict)
    # Risk scores read for the row; more than one means the worker processed its event again.
    scores: int = 0


def free_port_pair() -> int:
    """Return a free loopback port whose successor is free too (broker and controller)."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port < 65535 and _is_free(port) and _is_free(port + 1):
            return port
    raise ClinopsError("found no two consecutive free ports on 127.0.0.1")


def _is_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def run_evaluation(settings: Settings, path: Path, limit: int | None,
                   worker_log: Path | None = None) -> tuple[dict[str, Any], dict[str, list[tuple[float, bool]]]]:
    """Replay the stays under ``path`` through a pipeline of its own; return the figures and the curves' points.

    ``worker_log``, when given, receives a copy of the worker's log.
    """
    check_kinds((settings.model, *settings.challenger_kinds))
    stays = load_stays(list_stays(path, limit))
    if not stays:
        raise ClinopsError(f"{path} contains no .psv stays")
    with tempfile.TemporaryDirectory(prefix="clinops-evaluate-") as folder:
        root = Path(folder)
        port = free_port_pair()
        broker = LocalBroker(root / "kafka", port=port, controller_port=port + 1, jars=settings.kafka_dir / "jars")
        print(f"Starting a broker and a worker of this evaluation in {root}...")
        broker.start()
        worker = None
        try:
            create_topics(broker.bootstrap_servers)
            data_dir = root / "data"
            with open_vault(Settings(data_dir=data_dir)) as vault:
                vault.register_devices(replayed_monitors(stays), "evaluate")
            worker_port = free_port_pair()
            env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers, "CLINOPS_DATA_DIR": str(data_dir),
                   "CLINOPS_WORKER_PORT": str(worker_port), "CLINOPS_APP_ID": "clinops-evaluate",
                   "CLINOPS_MODEL": settings.model, "CLINOPS_CHALLENGERS": settings.challengers,
                   # The evaluation's models are thrown away; saving large ones every minute only slows it.
                   "CLINOPS_MODEL_SAVE_INTERVAL_S": str(EVALUATION_SAVE_INTERVAL_S)}
            worker = start_worker(env, worker_port, root / "worker.log", "--stages", "pseudonymizer,scorer",
                                  "--loglevel", "warning", cwd=PROJECT_ROOT)

            rows = sum(len(stay.rows) for stay in stays)
            print(f"Replaying {len(stays)} stays ({rows} hourly rows) from {path}")
            progress = Progress(rows, "replay")
            stats = replay(stays, EventProducer(broker.bootstrap_servers), speed=None, start=REPLAY_START,
                           run_id=RUN_ID, on_event=lambda s: progress.update(s.rows),
                           admission_hours=admission_hours(stays))
            progress.close()
            wait_for_scorer(worker_port, stats.rows + stats.outcomes)
            scored = collect_scores(broker.bootstrap_servers, stays)
        finally:
            if worker is not None:
                stop_worker(worker)
            broker.stop()
            if worker_log is not None and (root / "worker.log").exists():
                worker_log.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(root / "worker.log", worker_log)
    return figures(stays, scored, settings), curve_points(scored)


def admission_hours(stays: list[PhysionetStay]) -> int:
    """Admit one stay an hour on average, the pace of a unit with about 40 beds.

    Training set B's 6,000 stays, about 38 hours each, then overlap by about 38 at a
    time. Admitting them all within a day would put thousands of patients in the unit
    at once, in lockstep, so that the model would meet each hour of stay only after
    learning from none beyond it.
    """
    return max(24, len(stays))


def wait_for_scorer(port: int, events: int) -> None:
    """Wait until the worker has scored or dead-lettered ``events`` vitals and outcomes.

    The pseudonymizer dead-letters implausible rows (such as an SpO2 below 50), which
    therefore never reach the scorer.
    """
    progress = Progress(events, "scored")
    deadline = time.monotonic() + PROCESSING_TIMEOUT_S
    while time.monotonic() < deadline:
        health = worker_health(port)
        done = health["processed"]["scorer"] + health["processed"]["dead-letters"] if health else 0
        progress.update(done)
        if done >= events:
            progress.close()
            return
        time.sleep(2.0)
    progress.close()
    raise ClinopsError(f"the scorer did not handle {events} events within {PROCESSING_TIMEOUT_S:.0f} s")


def collect_scores(bootstrap_servers: str, stays: list[PhysionetStay]) -> dict[str, list[ScoredRow]]:
    """Join every risk score to its stay's row and label; return rows by stay, in time order."""
    labels = {(stay.stay_id, row.line): bool(row.sepsis_label) for stay in stays for row in stay.rows}
    rows_by_event: dict[str, ScoredRow] = {}
    scored: dict[str, list[ScoredRow]] = {}
    for event in merged_events(stays, REPLAY_START, RUN_ID, admission_hours(stays)):
        if event.topic is not BEDSIDE_VITALS:
            continue
        stay_id, line = event.order
        row = ScoredRow(label=labels[stay_id, line])
        rows_by_event[str(registry.decode(event.value)[1]["event_id"])] = row
        scored.setdefault(stay_id, []).append(row)
    print("Reading the risk scores back...")
    for message in read_topic(bootstrap_servers, RISK_SCORES.name, timeout_s=600):
        score = registry.decode(message.value())[1]
        row = rows_by_event.get(str(score["event_id"]))
        if row is None:
            continue
        row.scores += 1
        # A redelivered event is scored again; the first score is the one made in stream order.
        if row.scores == 1:
            row.model_risk, row.news2 = score["model_risk"], score["news2"]
            row.challenger_risks = score["challenger_risks"]
    return scored


def simulated_alerts(scores: list[float | None], threshold: float, rearm_hours: float) -> list[int]:
    """Return the rows where one score alone would raise an alert under the live hysteresis."""
    state = AlertState()
    alerts = []
    for index, score in enumerate(scores):
        severity = "HIGH" if score is not None and score >= threshold else None
        if state.observe(REPLAY_START + timedelta(hours=index), severity, timedelta(hours=rearm_hours)):
            alerts.append(index)
    return alerts


def threshold_figures(rows: dict[str, list[ScoredRow]], score_of, threshold: float, rearm_hours: float) -> dict[str, Any]:
    """Utility, sensitivity, alert burden and lead time of one score at one threshold."""
    stays = []
    alerts = []
    for stay_rows in rows.values():
        scores = [score_of(row) for row in stay_rows]
        predictions = [score is not None and score >= threshold for score in scores]
        stays.append(Stay([row.label for row in stay_rows], predictions))
        alerts.append(simulated_alerts(scores, threshold, rearm_hours))
    alert = alert_figures(stays, alerts)
    return {
        "threshold": threshold,
        "utility": normalized_utility(stays),
        "sensitivity": alert.sensitivity,
        "patient_sensitivity": alert.patient_sensitivity,
        "alerts_per_100_patient_days": alert.alerts_per_100_patient_days,
        "median_lead_hours": alert.median_lead_hours,
    }


def tuned_utility(rows: dict[str, list[ScoredRow]], score_of) -> dict[str, float | None]:
    """Choose the threshold with the best utility on the first half of the stays (by
    stay id), and measure the utility at that threshold on the second half.

    The configured alert threshold suits one kind of model. This shows what a threshold
    chosen on earlier patients achieves on later ones, whose labels did not inform it.
    """
    ordered = [rows[stay_id] for stay_id in sorted(rows)]
    first, second = ordered[: len(ordered) // 2], ordered[len(ordered) // 2:]
    scores = sorted(score for stay_rows in first for row in stay_rows if (score := score_of(row)) is not None)
    if not scores or not second:
        return {"tuned_threshold": None, "tuned_utility_second_half": None}
    candidates = sorted({scores[int(q * (len(scores) - 1))] for q in [i / 100 for i in range(50, 100)]})

    def utility(stays: list[list[ScoredRow]], threshold: float) -> float:
        return normalized_utility([
            Stay([row.label for row in stay_rows],
                 [(score := score_of(row)) is not None and score >= threshold for row in stay_rows])
            for stay_rows in stays
        ])

    best = max(candidates, key=lambda threshold: utility(first, threshold))
    return {"tuned_threshold": best, "tuned_utility_second_half": utility(second, best)}


def alert_threshold(settings: Settings, kind: str) -> float:
    """Return the model risk at which ``kind`` alerts: CLINOPS_ALERT_MODEL_RISK, or the kind's own."""
    return settings.alert_model_risk if settings.alert_model_risk is not None else MODEL_SPECS[kind].alert_threshold


def figures(stays: list[PhysionetStay], rows: dict[str, list[ScoredRow]], settings: Settings) -> dict[str, Any]:
    """Compute the champion's and NEWS2's figures over the same rows."""
    everything = [row for stay_rows in rows.values() for row in stay_rows]
    # Rows that both scores scored: the model returns no risk until its warm-up ends.
    both = [row for row in everything if row.model_risk is not None and row.news2 is not None]
    rearm = settings.alert_rearm_hours
    labels = [row.label for row in both]

    champion = {
        "auroc": auroc([row.model_risk for row in both], labels),
        "auprc": auprc([row.model_risk for row in both], labels),
        **threshold_figures(rows, lambda row: row.model_risk, alert_threshold(settings, settings.model), rearm),
        **tuned_utility(rows, lambda row: row.model_risk),
    }

    news2: dict[str, Any] = {
        "auroc": auroc([row.news2 for row in both], labels),
        "auprc": auprc([row.news2 for row in both], labels),
        "auroc_all_rows": auroc([row.news2 or 0 for row in everything], [row.label for row in everything]),
        "thresholds": {str(t): threshold_figures(rows, lambda row: row.news2, t, rearm) for t in NEWS2_THRESHOLDS},
        **tuned_utility(rows, lambda row: row.news2),
    }
    # The MEDIUM alert threshold (5) is the NEWS2 figure where one figure is expected.
    news2.update(news2["thresholds"]["5"])

    # Each challenger over the rows that it and NEWS2 scored; it learned the same labels in shadow.
    challengers = {}
    for kind in settings.challenger_kinds:
        version = MODEL_SPECS[kind].version
        scored = [row for row in everything if version in row.challenger_risks and row.news2 is not None]
        risks = [row.challenger_risks[version] for row in scored]
        challengers[version] = {
            "kind": kind,
            "rows": len(scored),
            "auroc": auroc(risks, [row.label for row in scored]),
            "auprc": auprc(risks, [row.label for row in scored]),
            "news2_auroc_same_rows": auroc([row.news2 for row in scored], [row.label for row in scored]),
            **threshold_figures(rows, lambda row, v=version: row.challenger_risks.get(v), alert_threshold(settings, kind),
                                rearm),
            **tuned_utility(rows, lambda row, v=version: row.challenger_risks.get(v)),
        }

    spec = MODEL_SPECS[settings.model]
    return {
        "model": {"kind": spec.name, "version": spec.version, "description": spec.description,
                  "hyperparameters": spec.hyperparameters},
        "stays": len(stays),
        "rows": len(everything),
        "rows_scored_by_both": len(both),
        "rows_scored_more_than_once": sum(1 for row in everything if row.scores > 1),
        "positive_rows": sum(row.label for row in everything),
        "septic_stays": sum(1 for stay in stays if stay.onset_hour is not None),
        "champion": champion,
        "news2": news2,
        "challengers": challengers,
    }


def curve_points(rows: dict[str, list[ScoredRow]]) -> dict[str, list[tuple[float, bool]]]:
    """Return (score, label) pairs for the report's curves: the champion and NEWS2 over the rows that both
    scored, and each challenger over the rows that it scored."""
    result: dict[str, list[tuple[float, bool]]] = defaultdict(list)
    for stay_rows in rows.values():
        for row in stay_rows:
            if row.model_risk is not None and row.news2 is not None:
                result["champion"].append((row.model_risk, row.label))
                result["news2"].append((float(row.news2), row.label))
            for version, risk in row.challenger_risks.items():
                result[version].append((risk, row.label))
    return result
