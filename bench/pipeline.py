"""Benchmark the pipeline against a plain confluent-kafka consume-produce loop.

Starts its own broker in a temporary folder (ports 49092-49093) and its own worker,
so earlier topics and stores do not interfere, then measures in one run:

1. baseline: events per second of a plain consume-produce loop over the replay's
   bedside events, with confluent-kafka on the same broker;
2. throughput: events per second end to end (first bedside event produced to last
   risk score produced) for a replay at full speed;
3. latency: bedside-event-to-score and event-to-alert latency percentiles for a
   replay paced well below capacity, from Kafka message timestamps;
4. pseudonymizer: events per second of a worker that runs only the pseudonymizer,
   draining the bedside backlog, the same task shape as the baseline loop;
5. memory: bytes of scorer state per monitored patient (tracemalloc, in-process),
   and the worker's resident memory after the run.

Usage: python bench/pipeline.py [--stays 500] [--latency-stays 100] [--data FOLDER]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient, NewTopic

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from clinops.worker_client import query_worker  # noqa: E402
from clinops.worker_process import start_worker, stop_worker  # noqa: E402
from infra.kafka.launcher import LocalBroker  # noqa: E402
from schemas.codec import registry  # noqa: E402
from streams.producer import EventProducer  # noqa: E402
from streams.sources.physionet import list_stays  # noqa: E402
from streams.sources.replay import load_stays, merged_events, replay  # noqa: E402
from streams.topic_reader import read_topic  # noqa: E402
from processors.vault import open_vault  # noqa: E402
from streams.settings import Settings  # noqa: E402
from streams.sources.replay import replayed_monitors  # noqa: E402
from streams.topics import ALERTS, BEDSIDE_VITALS, RISK_SCORES, VITALS_PSEUDONYMIZED, create_topics  # noqa: E402

BROKER_PORT = 49092
WORKER_PORT = 46066
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "physionet2019" / "training_setB"


def produce(producer: Producer, topic: str, key: bytes | None, value: bytes) -> None:
    """Produce one message, waiting for room when librdkafka's local queue is full."""
    while True:
        try:
            producer.produce(topic, key=key, value=value)
            break
        except BufferError:
            producer.poll(0.05)
    producer.poll(0)


BASELINE_REPEATS = 10


def baseline(bootstrap: str, values: list[bytes]) -> float:
    """Events per second of a plain confluent-kafka loop that consumes and produces each event.

    The events are repeated BASELINE_REPEATS times: one pass of a 500-stay replay takes
    a tenth of a second, too short for a stable rate.
    """
    values = values * BASELINE_REPEATS
    source, sink = f"bench.in.{uuid.uuid4().hex[:6]}", f"bench.out.{uuid.uuid4().hex[:6]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(source, 3, 1), NewTopic(sink, 3, 1)]).values():
        future.result()
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "acks": "all", "enable.idempotence": True})
    for value in values:
        produce(producer, source, None, value)
    producer.flush()

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4()}", "auto.offset.reset": "earliest"})
    consumer.subscribe([source])
    done, started = 0, None
    while done < len(values):
        message = consumer.poll(1.0)
        if message is None or message.error():
            continue
        started = started or time.perf_counter()
        produce(producer, sink, message.key(), message.value())
        done += 1
    producer.flush()
    elapsed = time.perf_counter() - started
    consumer.close()
    return done / elapsed


def start_bench_worker(bootstrap: str, data_dir: Path, monitors: list[str], *args: str) -> subprocess.Popen:
    """Start a worker with its own data folder, its monitors registered in its vault."""
    with open_vault(Settings(data_dir=data_dir)) as vault:
        vault.register_devices(monitors, "bench")
    env = {**os.environ, "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "CLINOPS_DATA_DIR": str(data_dir),
           "CLINOPS_WORKER_PORT": str(WORKER_PORT), "CLINOPS_APP_ID": f"bench-{uuid.uuid4().hex[:6]}"}
    return start_worker(env, WORKER_PORT, data_dir / "worker.log", "--loglevel", "warning", *args, cwd=ROOT)


def pseudonymizer_throughput(bootstrap: str, data_dir: Path, monitors: list[str], expected: int,
                             timeout_s: float = 1800) -> tuple[float, int]:
    """Events per second of a pseudonymizer-only worker that drains the bedside backlog.

    The rate is taken from the Kafka timestamps of the worker's own outputs (those after
    it started), so start-up and group join are not counted, as in the baseline loop.
    """
    started_ms = time.time() * 1000
    worker = start_bench_worker(bootstrap, data_dir, monitors, "--stages", "pseudonymizer")
    try:
        deadline = time.monotonic() + timeout_s
        stamps: list[int] = []
        unchanged = 0
        while time.monotonic() < deadline and unchanged < 3:
            time.sleep(2.0)
            previous = len(stamps)
            stamps = [m.timestamp()[1] for m in read_topic(bootstrap, VITALS_PSEUDONYMIZED.name) if m.timestamp()[1] >= started_ms]
            print(f"  pseudonymized {len(stamps)}/{expected}", file=sys.stderr)
            if len(stamps) >= expected:
                break
            # Rejected inputs yield no output: a count that stops growing means the backlog is drained.
            unchanged = unchanged + 1 if stamps and len(stamps) == previous else 0
    finally:
        stop_worker(worker)
    if len(stamps) < 0.99 * expected:
        raise TimeoutError(f"the pseudonymizer pseudonymized {len(stamps)} of {expected} events")
    return len(stamps) / ((max(stamps) - min(stamps)) / 1000), len(stamps)


def wait_scored(expected: int, timeout_s: float = 1800) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        rows = query_worker(WORKER_PORT, "SELECT countIf(action = 'risk.scored') + countIf(action = 'input.rejected') FROM audit_events").rows
        if int(rows[0][0]) >= expected:
            return
        print(f"  scored {rows[0][0]}/{expected}", file=sys.stderr)
        time.sleep(2.0)
    raise TimeoutError("the worker did not score every event in time")


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50": pick(0.50), "p95": pick(0.95), "p99": pick(0.99), "max": ordered[-1], "count": len(ordered)}


def latencies(bootstrap: str, run_event_ids: set[str]) -> dict[str, dict[str, float]]:
    """Milliseconds from each bedside event's produce time to its score's and alert's."""
    produced = {}
    for message in read_topic(bootstrap, BEDSIDE_VITALS.name):
        event_id = str(registry.decode(message.value())[1]["event_id"])
        if event_id in run_event_ids:
            produced[event_id] = message.timestamp()[1]
    result = {}
    for name, topic in (("score", RISK_SCORES.name), ("alert", ALERTS.name)):
        samples = []
        for message in read_topic(bootstrap, topic):
            event_id = str(registry.decode(message.value())[1]["event_id"])
            if event_id in produced:
                samples.append(message.timestamp()[1] - produced[event_id])
        result[name] = percentiles(samples) if samples else {}
    return result


def throughput(bootstrap: str, run_event_ids: set[str]) -> tuple[float, int]:
    first = min(m.timestamp()[1] for m in read_topic(bootstrap, BEDSIDE_VITALS.name)
                if str(registry.decode(m.value())[1]["event_id"]) in run_event_ids)
    scores = [m.timestamp()[1] for m in read_topic(bootstrap, RISK_SCORES.name)
              if str(registry.decode(m.value())[1]["event_id"]) in run_event_ids]
    return len(scores) / ((max(scores) - first) / 1000), len(scores)


def memory_per_patient(patients: int = 5000, hours: int = 12) -> float:
    """Bytes of scorer state per patient monitored for ``hours`` without discharge."""
    from processors.alerting import AlertPolicy
    from processors.labels import LabelJoiner
    from processors.messages import Input
    from processors.model_lineup import ModelLineup
    from processors.risk_model import RiskModel
    from processors.scorer import ScorerStage
    from schemas.models import PseudonymizedVitals

    scorer = ScorerStage(AlertPolicy(), LabelJoiner(), ModelLineup([RiskModel()]))
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    messages = [
        Input("vitals.pseudonymized", 0, 0, None, PseudonymizedVitals(
            event_id=uuid.uuid4(), source="bench", pseudonym=f"p-{i}", key_id="k", ward="MICU",
            observed_at=start + timedelta(hours=h), heart_rate=80.0 + h, spo2=96.0, respiratory_rate=18.0,
            systolic_bp=120.0, temperature=37.0).to_avro())
        for h in range(hours) for i in range(patients)
    ]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for message in messages:
        scorer.handle(message)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / patients


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stays", type=int, default=500, help="stays replayed at full speed")
    parser.add_argument("--latency-stays", type=int, default=100, help="stays replayed paced for latency")
    parser.add_argument("--latency-speed", type=float, default=3600.0, help="pace of the latency replay")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="folder of PhysioNet .psv stays")
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="clinops-bench-") as folder:
        root = Path(folder)
        broker = LocalBroker(root / "kafka", port=BROKER_PORT, controller_port=BROKER_PORT + 1,
                             jars=ROOT / "var" / "kafka" / "jars")
        broker.start()
        worker = None
        try:
            bootstrap = broker.bootstrap_servers
            create_topics(bootstrap)
            stays = load_stays(list_stays(args.data, args.stays))
            run_id = uuid.uuid4().hex
            start = datetime(2026, 1, 1, tzinfo=timezone.utc)
            vitals_events = [e for e in merged_events(stays, start, run_id) if e.topic is BEDSIDE_VITALS]
            run_ids = {str(registry.decode(e.value)[1]["event_id"]) for e in vitals_events}

            print("1. baseline consume-produce loop", file=sys.stderr)
            baseline_eps = baseline(bootstrap, [e.value for e in vitals_events])

            print(f"2. full-speed replay of {len(stays)} stays", file=sys.stderr)
            paced = load_stays(list_stays(args.data, args.stays + args.latency_stays)[args.stays:])
            monitors = replayed_monitors(stays + paced)
            worker = start_bench_worker(bootstrap, root / "pipeline", monitors)
            stats = replay(stays, EventProducer(bootstrap), speed=None, start=start, run_id=run_id)
            wait_scored(stats.rows + stats.malformed)
            system_eps, scored = throughput(bootstrap, run_ids)
            worker_rss = rss_mb(worker.pid)

            print(f"3. paced replay of {args.latency_stays} stays at {args.latency_speed:g}x", file=sys.stderr)
            paced_run = uuid.uuid4().hex
            paced_start = start + timedelta(days=60)
            paced_ids = {str(registry.decode(e.value)[1]["event_id"])
                         for e in merged_events(paced, paced_start, paced_run) if e.topic is BEDSIDE_VITALS}
            paced_stats = replay(paced, EventProducer(bootstrap), speed=args.latency_speed, start=paced_start, run_id=paced_run)
            wait_scored(stats.rows + stats.malformed + paced_stats.rows + paced_stats.malformed)
            latency = latencies(bootstrap, paced_ids)
            stop_worker(worker)
            worker = None

            backlog = stats.rows + paced_stats.rows
            print(f"4. pseudonymizer alone, draining {backlog} bedside events", file=sys.stderr)
            pseudonymizer_eps, pseudonymized = pseudonymizer_throughput(bootstrap, root / "pseudonymizer", monitors, backlog)

            print("5. memory per monitored patient", file=sys.stderr)
            per_patient = memory_per_patient()
        finally:
            if worker is not None:
                stop_worker(worker)
            broker.stop()

    result = {
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": f"{os.cpu_count()} cores, Python {sys.version.split()[0]}",
        "stays": len(stays), "events": stats.rows, "scored": scored,
        "baseline_events_per_s": round(baseline_eps),
        "pipeline_events_per_s": round(system_eps),
        "pipeline_to_baseline_ratio": round(system_eps / baseline_eps, 4),
        "pseudonymizer_events": pseudonymized,
        "pseudonymizer_events_per_s": round(pseudonymizer_eps),
        "pseudonymizer_to_baseline_ratio": round(pseudonymizer_eps / baseline_eps, 4),
        "latency_stays": len(paced), "latency_speed": args.latency_speed,
        "latency_ms": latency,
        "scorer_bytes_per_patient": round(per_patient),
        "worker_rss_mb_after_run": round(worker_rss, 1),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
