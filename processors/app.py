"""The Faust application: one agent per stage, the audit writer, and a loopback web endpoint.

Every agent reads raw bytes and decodes them itself, so that a bad message becomes a
dead letter instead of an exception inside Faust. Outputs go out in batches through a
confluent-kafka producer, which costs far less per message than Faust's own producer.
The ``clinops-avro`` codec stays registered for agents that send event models.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import socket
from datetime import datetime, timedelta, timezone
from typing import Any

import faust
from confluent_kafka import Consumer, KafkaException, TopicPartition
from faust.web import Request, Response, View

from processors import faust_codec
from processors.alerting import AlertPolicy
from processors.audit_service import AuditWriterService
from processors.audit_verify import prove, verify
from processors.audit_writer import ChainWriter
from processors.labels import LabelJoiner
from processors.messages import Input, Output
from processors.news2 import news2
from processors.patient_store import PatientStore
from processors.signing import load_or_create_signer, trusted_public_keys
from processors.vault import open_vault
from processors.pseudonymizer import PseudonymizerStage
from processors.model_service import ModelService, build_lineup
from processors.risk_model import RiskModel
from processors.scorer import ScorerStage
from schemas.errors import ClinopsError
from streams.kafka_auth import faust_credentials, security_config
from streams.producer import EventProducer
from streams.settings import Settings
from streams.sinks.audit_store import AuditStore, open_store
from streams.topics import CATALOGUE, DEAD_LETTERS, DEAD_LETTERS_IDENTIFIED, PATIENT_PARTITIONS, ensure_topics

log = logging.getLogger(__name__)

STAGES = ("pseudonymizer", "scorer", "audit")
# Stages take up to this many events at a time, or what arrived within the window, and
# produce their outputs through confluent-kafka (librdkafka) in one go.
STAGE_BATCH = 500
STAGE_BATCH_WINDOW_S = 0.05
# Seconds between the scorer's checks for an idle input (processors/scorer.py).
IDLE_FLUSH_TICK_S = 1.0


def broker_url(bootstrap_servers: str) -> str:
    """Turn ``host1:9092,host2:9092`` into Faust's ``kafka://host1:9092;kafka://host2:9092``."""
    return ";".join(f"kafka://{server.strip()}" for server in bootstrap_servers.split(",") if server.strip())


def to_input(message: Any, value: bytes) -> Input:
    """Convert a Faust message (timestamp in seconds since the epoch) to a stage input."""
    timestamp = datetime.fromtimestamp(message.timestamp, tz=timezone.utc) if message.timestamp else None
    return Input(message.topic, message.partition, message.offset, message.key, value, timestamp)


class Worker:
    """Builds the Faust app around the stages and owns the audit store."""

    def __init__(self, settings: Settings, stages: tuple[str, ...] = STAGES) -> None:
        faust_codec.register()
        self.settings = settings
        self.stages = stages
        self.kafka_security = security_config(settings)
        self.app = faust.App(
            settings.app_id,
            broker=broker_url(settings.bootstrap_servers),
            broker_credentials=faust_credentials(settings),
            store="memory://",
            # Faust's own folder, otherwise created in the working directory.
            datadir=str(settings.data_dir / "faust"),
            web_enabled=True,
            web_bind="127.0.0.1",
            web_port=settings.worker_port,
            web_in_thread=False,
            producer_acks=-1,
            consumer_auto_offset_reset="earliest",
            topic_partitions=CATALOGUE[0].partitions,
            # Events Faust buffers per partition ahead of the agent; room for several batches.
            stream_buffer_maxsize=4096,
        )
        self.store: AuditStore | None = None
        self.producer = EventProducer(settings.bootstrap_servers, **self.kafka_security)
        # The vault and keys are opened only by a worker that pseudonymizes.
        self.vault = open_vault(settings) if "pseudonymizer" in stages else None
        self.pseudonymizer = PseudonymizerStage(self.vault) if self.vault is not None else None
        policy = AlertPolicy(
            news2_medium=settings.alert_news2_medium,
            news2_high=settings.alert_news2_high,
            model_risk=settings.alert_model_risk,
            rearm=timedelta(hours=settings.alert_rearm_hours),
        )
        horizon = timedelta(hours=settings.label_horizon_hours)
        patients = self._patient_store() if "scorer" in stages else PatientStore()
        models_dir = settings.data_dir / "models"
        # A worker without the scorer builds the lineup only to check the configured kinds.
        self.lineup = build_lineup((settings.model, *settings.challenger_kinds),
                                   models_dir if "scorer" in stages else None)
        self.models = ModelService(self.lineup, models_dir)
        self.scorer = ScorerStage(policy, LabelJoiner(horizon=horizon), self.lineup, patients=patients)
        self._offsets: Consumer | None = None
        self.audit_writer: AuditWriterService | None = None
        self.counts: dict[str, int] = {"pseudonymizer": 0, "scorer": 0, "dead-letters": 0}

        if self.pseudonymizer is not None:
            self._add_stage_agent(self.pseudonymizer)
        if "scorer" in stages:
            self._add_stage_agent(self.scorer)
            self._add_idle_flush()
            self._add_model_saves()
            self._add_decision_watch()
        if "pseudonymizer" in stages:
            self._add_vault_refresh()
        self._add_web_views()

    def save_models(self) -> None:
        """Save each model that has learned since its last save, and audit each save."""
        if "scorer" not in self.stages:
            return
        self._produce(self.models.save())
        self.producer.flush()

    def _patient_store(self) -> PatientStore:
        """Keep patient states in a Faust table, whose changelog restores them after a restart.

        Changes go to the changelog through the stage's confluent-kafka producer, in the
        input's partition and in the table's JSON encoding. The agent flushes that
        producer before Faust commits the inputs, so no committed input has an unwritten state.
        """
        table = self.app.Table(
            "patient-state", partitions=PATIENT_PARTITIONS,  # keys and values in JSON, without a model type
            help="Per-patient vitals history and stay start, by pseudonym (the scorer's features).",
        )

        def save(partition: int, pseudonym: str, state: dict | None) -> None:
            if state is None:
                table.data.pop(pseudonym, None)
            else:
                table.data[pseudonym] = state
            value = None if state is None else json.dumps(state, separators=(",", ":")).encode()
            self.producer.send_record(table.changelog_topic.get_topic_name(), json.dumps(pseudonym).encode(), value, partition)

        return PatientStore(load=table.data.get, save=save)

    def _raw_channel(self, *names: str) -> faust.TopicT:
        return self.app.topic(*names, key_serializer="raw", value_serializer="raw")

    async def _send(self, outputs: list[Output]) -> None:
        self._produce(outputs)
        await self._flush()

    def _produce(self, outputs: list[Output]) -> None:
        for output in outputs:
            if output.topic in (DEAD_LETTERS, DEAD_LETTERS_IDENTIFIED):
                self.counts["dead-letters"] += 1
            self.producer.send(output.topic, output.key, output.value, output.partition)

    async def _flush(self) -> None:
        """Wait until the broker has every output, before Faust may commit the inputs."""
        await asyncio.get_running_loop().run_in_executor(None, self.producer.flush)

    def _add_stage_agent(self, stage: PseudonymizerStage | ScorerStage) -> None:
        channel = self._raw_channel(*(spec.name for spec in stage.inputs))

        async def process(stream: faust.StreamT) -> None:
            async for events in stream.take_events(STAGE_BATCH, within=STAGE_BATCH_WINDOW_S):
                for event in events:
                    self._produce(stage.handle(to_input(event.message, event.value)))
                if stage is self.scorer:
                    self.scorer.patients.persist()
                self.counts[stage.name] += len(events)
                await self._flush()
                if stage is self.scorer:
                    self.scorer.note_input()

        self.app.agent(channel, name=stage.name)(process)

    def _add_vault_refresh(self) -> None:
        vault = self.vault
        assert vault is not None

        async def refresh() -> None:
            vault.refresh()

        # An erasure or key rotation by `clinops` reaches this worker within 2 s.
        self.app.timer(interval=2.0, name="vault-refresh")(refresh)

    def _add_model_saves(self) -> None:
        async def save() -> None:
            self.save_models()

        self.app.timer(interval=self.settings.model_save_interval_s, name="model-save")(save)

    def _add_decision_watch(self) -> None:
        async def watch() -> None:
            await self._send(self.models.follow())

        # A promotion or rollback reaches this worker within a second.
        self.app.timer(interval=1.0, name="model-decisions")(watch)

    def _scorer_inputs_drained(self) -> bool:
        """Return True when every scorer input partition assigned here has been handled to its end."""
        if self._offsets is None:
            # Never subscribes, so it does not join the group; it only reads offsets.
            self._offsets = Consumer({"bootstrap.servers": self.settings.bootstrap_servers,
                                      "group.id": self.settings.app_id, "enable.auto.commit": False,
                                      "logger": logging.getLogger("librdkafka"), **self.kafka_security})
        names = {spec.name for spec in ScorerStage.inputs}
        assigned = [TopicPartition(tp.topic, tp.partition) for tp in self.app.consumer.assignment() if tp.topic in names]
        try:
            committed = {(tp.topic, tp.partition): tp.offset for tp in self._offsets.committed(assigned, timeout=5.0)}
            for tp in assigned:
                low, high = self._offsets.get_watermark_offsets(tp, timeout=5.0)
                position = self.scorer.positions.get((tp.topic, tp.partition), committed.get((tp.topic, tp.partition), -1))
                if high > max(low, position):
                    return False
        except KafkaException as exc:
            log.warning("could not read the scorer's input offsets, so held discharges wait: %s", exc)
            return False
        return True

    def _add_idle_flush(self) -> None:
        async def flush() -> None:
            outputs = self.scorer.flush_idle(IDLE_FLUSH_TICK_S, drained=self._scorer_inputs_drained)
            self.scorer.patients.persist()
            await self._send(outputs)

        self.app.timer(interval=IDLE_FLUSH_TICK_S, name="scorer-idle-flush")(flush)

    def _add_web_views(self) -> None:
        worker = self

        def describe(model: RiskModel) -> dict[str, Any]:
            return {"version": model.version, "learned": model.learned, "positives": model.positives,
                    "ready": model.ready, "progressive_auroc": model.auroc.value(),
                    "progressive_auroc_labels": model.auroc.count}

        @self.app.page("/health")
        class Health(View):
            async def get(self, request: Request) -> Response:
                writer = worker.audit_writer
                if writer is not None and not writer.alive:
                    return self.json({"status": "audit writer stopped", "error": repr(writer.error)}, status=503)
                written = writer.writer.written if writer is not None else 0
                document: dict[str, Any] = {"status": "ok", "processed": worker.counts, "audit_rows_written": written}
                if "scorer" in worker.stages:
                    document["model"] = describe(worker.lineup.champion)
                    document["challengers"] = [describe(model) for model in worker.lineup.challengers]
                return self.json(document)

        @self.app.page("/scorer/features")
        class ScorerFeatures(View):
            async def get(self, request: Request) -> Response:
                """Return a patient's current features, as the model would read them now."""
                pseudonym = request.query.get("pseudonym", "")
                if not pseudonym:
                    return self.json({"error": "missing the pseudonym parameter: /scorer/features?pseudonym=p-..."}, status=400)
                state = worker.scorer.patients.get(pseudonym)
                if state is None:
                    return self.json({"error": "no state for that pseudonym on this worker: it was never scored here, "
                                               "or its stay ended with a discharge, which drops the state"}, status=404)
                at = state.latest_at
                return self.json({"latest_at": at.isoformat(), "features": state.features(at, news2(state.current(at)))})

        @self.app.page("/audit/verify")
        class AuditVerify(View):
            async def get(self, request: Request) -> Response:
                loop = asyncio.get_running_loop()
                assert worker.store is not None
                report = await loop.run_in_executor(None, verify, worker.store, trusted_public_keys(worker.settings.keys_dir))
                return self.json({"ok": report.ok, "lines": report.lines()})

        @self.app.page("/audit/prove")
        class AuditProve(View):
            async def get(self, request: Request) -> Response:
                loop = asyncio.get_running_loop()
                try:
                    assert worker.store is not None
                    proof = await loop.run_in_executor(None, prove, worker.store, request.query.get("event_id", ""))
                except ClinopsError as exc:
                    return self.json({"error": str(exc)}, status=400)
                return self.json(proof)

        @self.app.page("/audit/sql")
        class AuditSql(View):
            async def post(self, request: Request) -> Response:
                body: dict[str, Any] = await request.json()
                loop = asyncio.get_running_loop()
                try:
                    assert worker.store is not None
                    result = await loop.run_in_executor(None, worker.store.query, str(body.get("sql", "")))
                except ClinopsError as exc:
                    return self.json({"error": str(exc)}, status=400)
                return self.json(result.to_json())

    def open(self) -> None:
        """Create missing topics and open the audit store, before Faust subscribes."""
        created = ensure_topics(self.settings, align_retention=True)
        if created:
            log.info("created %d topics from the catalogue", len(created))
        url = self.settings.clickhouse_url.get_secret_value() if self.settings.clickhouse_url else None
        self.store = open_store(url, self.settings.store_dir, self.settings.audit_retention_years)
        log.info("audit store open (%s)", "ClickHouse server" if url else f"embedded chDB at {self.settings.store_dir}")
        if "scorer" in self.stages:
            self._produce(self.models.start(self.settings.bootstrap_servers, self.kafka_security))
            self.producer.flush()
        if "audit" in self.stages:
            writer = ChainWriter(
                self.store, load_or_create_signer(self.settings.keys_dir),
                checkpoint_every=self.settings.audit_checkpoint_every,
                checkpoint_interval_s=self.settings.audit_checkpoint_interval_s,
            )
            self.audit_writer = AuditWriterService(
                writer, self.settings.bootstrap_servers, f"{self.settings.app_id}-audit-writer",
                # One id per host and data folder: the same writer after a restart.
                instance_id=f"{socket.gethostname()}-{hashlib.sha256(str(self.settings.data_dir.resolve()).encode()).hexdigest()[:12]}",
                client_config=self.kafka_security,
            )
            self.audit_writer.start()

    def close(self) -> None:
        self.save_models()
        self.models.close()
        if self._offsets is not None:
            self._offsets.close()
            self._offsets = None
        if self.audit_writer is not None:
            self.audit_writer.stop()
            self.audit_writer = None
        if self.store is not None:
            self.store.close()
            self.store = None


def run_worker(settings: Settings, loglevel: str = "info", stages: tuple[str, ...] = STAGES) -> None:
    """Run the worker until SIGINT or SIGTERM."""
    worker = Worker(settings, stages)
    worker.open()
    try:
        faust.Worker(worker.app, loglevel=loglevel, quiet=True).execute_from_commandline()
    finally:
        worker.close()
