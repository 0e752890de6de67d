"""``clinops demo``: the whole system on the bundled PhysioNet sample, start to finish.

1. Start the local broker unless one responds, and create the topics.
2. Start a worker process and wait until its web endpoint responds.
3. Follow the alert topic in a thread, printing this run's alerts.
4. Replay the sample as fast as the broker takes it, with a progress bar.
5. Wait until the audit store accounts for every replayed row and outcome.
6. Print the summary, then stop the worker and the broker it started.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from clinops.cli import local_broker
from clinops.devices import register_devices
from clinops.progress import Progress
from clinops.worker_client import query_worker, worker_health
from clinops.worker_process import start_worker, stop_worker
from schemas.errors import ClinopsError
from schemas.codec import registry
from schemas.models import DeteriorationAlert
from streams.consoles.alerts import follow_alerts, format_alert
from streams.producer import EventProducer
from processors.risk_model import MODEL_SPECS
from streams.settings import Settings
from streams.sources.physionet import list_stays
from streams.sources.pacing import FeedStats
from streams.sources.replay import default_start, load_stays, merged_events, replay, replayed_monitors
from streams.topics import BEDSIDE_VITALS, CLINICAL_OUTCOMES, ensure_topics

# Processing the bundled sample takes seconds; this bounds a stuck pipeline.
PROCESSING_TIMEOUT_S = 300.0
MAX_ALERTS_SHOWN = 25


def run_demo(settings: Settings, sample: Path, limit: int | None) -> int:
    broker = local_broker(settings) if settings.uses_local_broker else None
    started_broker = False
    worker: subprocess.Popen | None = None

    try:
        # 1. Broker and topics.
        if broker is not None and not broker.is_answering():
            print("Starting the local Kafka broker (the first start fetches its jars with Maven)...")
            broker.start()
            started_broker = True
        ensure_topics(settings)

        # 2. Worker.
        if worker_health(settings.worker_port) is not None:
            raise ClinopsError(
                f"a worker already responds on port {settings.worker_port}; stop it first, "
                "because the demo runs its own worker to report on one clean run"
            )
        worker = start_demo_worker(settings)

        # 3. Alerts of this run's events.
        stays = load_stays(list_stays(sample, limit))
        run_id, start = uuid.uuid4().hex, default_start()
        run = RunFilter.of(stays, start, run_id)
        stop_alerts = threading.Event()
        alerts: list[DeteriorationAlert] = []
        follower = threading.Thread(target=follow_run_alerts, args=(settings, run, alerts, stop_alerts), daemon=True)
        follower.start()

        # 4. Replay, from monitors registered as the hospital's biomedical engineers would.
        register_devices(settings, replayed_monitors(stays), "demo")
        rows = sum(len(stay.rows) for stay in stays)
        malformed = sum(len(stay.malformed) for stay in stays)
        print(f"Replaying {len(stays)} ICU stays ({rows} hourly rows) from {sample}")
        progress = Progress(rows + malformed, "replay")
        stats = replay(
            stays, EventProducer(settings.bootstrap_servers), speed=None, start=start,
            run_id=run_id, on_event=lambda s: progress.update(s.rows + s.malformed),
        )
        progress.close()

        # 5. Wait for the pipeline.
        counts = wait_for_processing(settings, worker, run, stats.rows + stats.malformed, stats.outcomes, stats.stays)
        time.sleep(1.0)  # let the follower print the last alerts
        stop_alerts.set()
        follower.join(timeout=5)

        # 6. Summary.
        print_summary(settings, run, stats, counts, len(alerts))
        return 0
    finally:
        if worker is not None:
            stop_worker(worker)
        if started_broker and broker is not None:
            broker.stop()
            print("Stopped the local Kafka broker.")


def start_demo_worker(settings: Settings) -> subprocess.Popen:
    log_path = settings.data_dir / "demo-worker.log"
    print(f"Starting the worker (log: {log_path})...")
    return start_worker(os.environ, settings.worker_port, log_path, "--loglevel", "warning")


def follow_run_alerts(settings: Settings, run: RunFilter, alerts: list[DeteriorationAlert], stop: threading.Event) -> None:
    """Print the alerts raised by this run's events; other alerts on the topic are skipped."""

    def show(alert: DeteriorationAlert) -> None:
        if str(alert.event_id) not in run.vitals:
            return
        alerts.append(alert)
        if len(alerts) <= MAX_ALERTS_SHOWN:
            print(f"ALERT {format_alert(alert)}", flush=True)
        elif len(alerts) == MAX_ALERTS_SHOWN + 1:
            print("... more alerts follow; the summary counts them all", flush=True)

    follow_alerts(settings.bootstrap_servers, show, from_beginning=True, should_stop=stop.is_set)


# ClickHouse parses at most 256 KiB of SQL per query, so long id lists are sent in slices.
IDS_PER_QUERY = 1000


@dataclass(frozen=True)
class RunFilter:
    """SQL conditions that select this run's audit rows, whatever else the store contains:
    the event ids of its vitals and outcomes, and the digests of its bedside messages."""

    vitals: frozenset[str]
    vitals_ids: list[str]
    outcome_ids: list[str]
    bedside_digests: list[str]

    @classmethod
    def of(cls, stays: list, start: datetime, run_id: str) -> RunFilter:
        vitals, outcomes, digests = [], [], []
        for event in merged_events(stays, start, run_id):
            if event.topic is BEDSIDE_VITALS:
                vitals.append(str(registry.decode(event.value)[1]["event_id"]))
                digests.append(hashlib.sha256(event.value).hexdigest())
            elif event.topic is CLINICAL_OUTCOMES:
                outcomes.append(str(registry.decode(event.value)[1]["event_id"]))
        return cls(frozenset(vitals), vitals, outcomes, digests)

    def conditions(self) -> list[str]:
        """Return conditions that together select the run's rows, each row in exactly one."""
        event_id = "JSONExtractString(details, 'event_id')"
        longest = max(len(self.vitals_ids), len(self.outcome_ids), 1)
        result = []
        for start in range(0, longest, IDS_PER_QUERY):
            vitals = quoted(self.vitals_ids[start:start + IDS_PER_QUERY])
            outcomes = quoted(self.outcome_ids[start:start + IDS_PER_QUERY])
            digests = quoted(self.bedside_digests[start:start + IDS_PER_QUERY])
            result.append(
                f"(action IN ('vitals.pseudonymized', 'risk.scored', 'alert.raised') AND {event_id} IN ({vitals}))"
                f" OR (action IN ('outcome.pseudonymized', 'outcome.received') AND {event_id} IN ({outcomes}))"
                f" OR (action = 'model.performance' AND JSONExtractString(details, 'outcome_event_id') IN ({outcomes}))"
                f" OR (action = 'input.rejected' AND input_sha256 IN ({digests}))"
            )
        return result

    def performance_condition(self) -> str:
        return f"JSONExtractString(details, 'outcome_event_id') IN ({quoted(self.outcome_ids)})"


def quoted(values: list[str]) -> str:
    return ", ".join(f"'{value}'" for value in values) or "''"


def run_counts(settings: Settings, run: RunFilter) -> dict[str, int]:
    counts: dict[str, int] = {}
    for condition in run.conditions():
        result = query_worker(settings.worker_port,
                              f"SELECT action, count() FROM audit_events WHERE {condition} GROUP BY action")
        for action, count in result.rows:
            counts[action] = counts.get(action, 0) + int(count)
    return counts


def wait_for_processing(
    settings: Settings, worker: subprocess.Popen, run: RunFilter, rows: int, outcomes: int, stays: int
) -> dict[str, int]:
    """Poll the audit store until every row is scored or rejected, every outcome is
    received, and every discharge has reported each model's performance."""
    models = len({MODEL_SPECS[kind].version for kind in (settings.model, *settings.challenger_kinds)})
    progress = Progress(rows + outcomes, "processed")
    deadline = time.monotonic() + PROCESSING_TIMEOUT_S
    counts: dict[str, int] = {}
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            raise ClinopsError(f"the worker exited with code {worker.returncode}; see {settings.data_dir / 'demo-worker.log'}")
        counts = run_counts(settings, run)
        done = counts.get("risk.scored", 0) + counts.get("input.rejected", 0) + counts.get("outcome.received", 0)
        progress.update(done)
        if done >= rows + outcomes and counts.get("model.performance", 0) >= stays * models:
            progress.close()
            return counts
        time.sleep(1.0)
    progress.close()
    raise ClinopsError(f"the pipeline did not finish within {PROCESSING_TIMEOUT_S:.0f} s: {counts}")


def print_summary(settings: Settings, run: RunFilter, stats: FeedStats, counts: dict[str, int], alerts_seen: int) -> None:
    performance = query_worker(
        settings.worker_port,
        f"SELECT subject_id, details FROM audit_events WHERE action = 'model.performance' "
        f"AND {run.performance_condition()} ORDER BY JSONExtractUInt(details, 'labels') DESC LIMIT 1 BY subject_id",
    )
    reports = [{**json.loads(details), "version": version} for version, details in performance.rows]
    metrics = next((report for report in reports if report.get("role") == "champion"), {})
    challengers = [report for report in reports if report.get("role") == "challenger"]
    total_audit = sum(counts.values())

    def auroc(name: str, report: dict = metrics) -> str:
        value = report.get(f"{name}_auroc")
        return "n/a (too few labels)" if value is None else f"{value:.3f} over {report.get(f'{name}_auroc_labels')} labelled observations"

    print()
    print("Summary of this run")
    print(f"  events in          {stats.rows} vitals rows, {stats.outcomes} outcomes ({stats.stays} stays)")
    print(f"  scored             {counts.get('risk.scored', 0)}")
    print(f"  dead-lettered      {counts.get('input.rejected', 0)}")
    print(f"  alerts             {counts.get('alert.raised', 0)} raised ({alerts_seen} seen on the alert topic)")
    print(f"  audit rows         {total_audit}")
    print(f"  model AUROC        {auroc('model')} ({metrics.get('version', settings.model)})")
    for report in challengers:
        print(f"  challenger AUROC   {auroc('model', report)} ({report.get('version')}, in shadow)")
    print(f"  NEWS2 AUROC        {auroc('news2')}")
    print()
    print("Try next (the store keeps this run):")
    print(f'  {command_name()} audit sql "SELECT action, count() FROM audit_events GROUP BY action"')
    print(f"  {command_name()} audit verify")
    print(f'  {command_name()} audit sql "SELECT * FROM alert_lifecycle LIMIT 10"')
    print(f"  {command_name()} models list")


def command_name() -> str:
    """Return how the user can call clinops again: by name when it is on PATH, else by path."""
    invoked = Path(sys.argv[0]).resolve()
    on_path = shutil.which("clinops")
    if invoked.name != "clinops" or (on_path is not None and Path(on_path).resolve() == invoked):
        return "clinops"
    return os.path.relpath(invoked)
