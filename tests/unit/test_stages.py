"""Contract tests over every processor stage, then each stage's own behaviour."""

from __future__ import annotations

import json
import tempfile
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from processors.alerting import AlertPolicy
from processors.labels import LabelJoiner
from processors.messages import Input, Output
from processors.pseudonym import PseudonymKey
from processors.vault import Identity, Vault
from processors.pseudonymizer import PseudonymizerStage
from processors.discharges import MAX_HOLD
from processors.scorer import IDLE_FLUSH_S, ScorerStage
from processors.risk_model import RiskModel
from processors.model_lineup import ModelLineup
from schemas.codec import registry
from schemas.models import PseudonymizedOutcome, PseudonymizedVitals
from streams.topics import IDENTIFIED_TOPICS

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)
IDENTITY = {"record_number": "H55501234", "patient_name": "Ines Virtanen", "birth_date": date(1951, 3, 9)}


def bedside(offset: int = 0, **vitals: float | None) -> Input:
    record = {
        "event_id": uuid.uuid4(), "source": "test", **IDENTITY, "sex": "F", "ward": "MICU",
        "bed": "MICU-04", "device_id": "mon-0a0b0c", "observed_at": T0 + offset * HOUR,
        "heart_rate": 80.0, "spo2": 97.0, "respiratory_rate": 16.0, **vitals,
    }
    return Input("bedside.vitals", 0, offset, IDENTITY["record_number"].encode(), registry.encode("bedside_vitals", record))


def vitals(offset: float, subject: str = "p-1", partition: int = 0, **values: float | None) -> Input:
    event = PseudonymizedVitals(
        event_id=uuid.uuid4(), source="test", pseudonym=subject, key_id="k-1", ward="MICU",
        observed_at=T0 + offset * HOUR, **{"heart_rate": 80.0, "spo2": 97.0, "respiratory_rate": 16.0, **values},
    )
    return Input("vitals.pseudonymized", partition, int(offset * 10), subject.encode(), event.to_avro())


def outcome(kind: str, offset: float, subject: str = "p-1", partition: int = 0) -> Input:
    event = PseudonymizedOutcome(event_id=uuid.uuid4(), source="test", pseudonym=subject, key_id="k-1",
                                 outcome=kind, occurred_at=T0 + offset * HOUR)
    return Input("outcomes.pseudonymized", partition, 0, subject.encode(), event.to_avro())


def by_topic(outputs: list[Output], topic: str) -> list:
    return [o.event for o in outputs if o.topic.name == topic]


def make_pseudonymizer(key: PseudonymKey, monitors: tuple[str, ...] = ("mon-0a0b0c",)) -> PseudonymizerStage:
    folder = Path(tempfile.mkdtemp(prefix="vault-"))
    vault = Vault(folder / "vault.sqlite3", bytes(32), key.secret)
    vault.register_devices(list(monitors), "test")
    return PseudonymizerStage(vault)


def make_scorer() -> ScorerStage:
    return ScorerStage(AlertPolicy(), LabelJoiner(), ModelLineup([RiskModel(warmup_labels=5)]))


STAGES = {
    "pseudonymizer": (lambda: make_pseudonymizer(PseudonymKey.from_secret(bytes(range(32)))), lambda: bedside()),
    "scorer": (make_scorer, lambda: vitals(0)),
}


@pytest.fixture(params=list(STAGES))
def stage_case(request: pytest.FixtureRequest):
    make_stage, make_input = STAGES[request.param]
    return make_stage, make_input


def test_contract_garbage_becomes_dead_letter(stage_case) -> None:
    make_stage, make_input = stage_case
    good = make_input()
    bad = Input(good.topic, 2, 41, b"k", b"\xc3\x01garbage")
    outputs = make_stage().handle(bad)
    # A stage that reads identified topics keeps their rejects in the restricted topic.
    restricted = good.topic in {spec.name for spec in IDENTIFIED_TOPICS}
    letters = by_topic(outputs, "dead.letters.identified" if restricted else "dead.letters")
    audits = by_topic(outputs, "audit.events")
    assert len(letters) == 1
    assert letters[0].payload == bad.value
    assert (letters[0].topic, letters[0].partition, letters[0].offset) == (good.topic, 2, 41)
    assert [a.action for a in audits] == ["input.rejected"]
    assert audits[0].subject_id == f"{good.topic}/2/41"
    assert len(outputs) == 2


def test_contract_redelivery_repeats_audit_ids(stage_case) -> None:
    make_stage, make_input = stage_case
    message = make_input()
    first = [a.event_id for a in by_topic(make_stage().handle(message), "audit.events")]
    again = [a.event_id for a in by_topic(make_stage().handle(message), "audit.events")]
    assert first
    assert first == again


def test_contract_outputs_are_valid_avro(stage_case) -> None:
    make_stage, make_input = stage_case
    for output in make_stage().handle(make_input()):
        writer, _ = registry.decode(output.value)
        assert writer.name == output.topic.schema


def test_pseudonymizer_drops_identifiers(key: PseudonymKey) -> None:
    stage = make_pseudonymizer(key)
    outputs = stage.handle(bedside())
    (clean,) = by_topic(outputs, "vitals.pseudonymized")
    assert clean.pseudonym == stage.vault.pseudonym(Identity(IDENTITY["record_number"]))
    assert clean.pseudonym.startswith("p-")
    assert clean.age_band == "70-74"
    assert clean.device is not None and clean.device.startswith("d-")
    for output in outputs:
        for value in ("H55501234", "Ines", "Virtanen", "1951-03-09", "MICU-04", "mon-0a0b0c"):
            assert value.encode() not in output.value
            assert value not in output.key


def test_pseudonymizer_keeps_input_partition(key: PseudonymKey) -> None:
    # A patient's events stay in one partition, in the order the feed sent them.
    stage = make_pseudonymizer(key)
    message = bedside()
    outputs = stage.handle(Input(message.topic, 2, message.offset, message.key, message.value))
    (clean,) = [output for output in outputs if output.topic.name == "vitals.pseudonymized"]
    assert clean.partition == 2


@pytest.mark.parametrize(
    ("field", "value", "error_type"),
    [("spo2", 0.97, "implausible_value"), ("spo2", 200.0, "implausible_value"), ("temperature", 99.0, "implausible_value")],
)
def test_pseudonymizer_rejects_implausible_vital(key: PseudonymKey, field: str, value: float, error_type: str) -> None:
    outputs = make_pseudonymizer(key).handle(bedside(**{field: value}))
    (letter,) = by_topic(outputs, "dead.letters.identified")
    (audit,) = by_topic(outputs, "audit.events")
    assert letter.error_type == error_type
    assert field in letter.reason
    assert str(value) in letter.reason
    assert json.loads(audit.details)["error_type"] == error_type
    assert by_topic(outputs, "vitals.pseudonymized") == []


@pytest.mark.parametrize(
    ("field", "value"),
    [("record_number", ""), ("record_number", "H 5550"), ("record_number", "H555\n01234"), ("device_id", "")],
)
def test_pseudonymizer_rejects_malformed_identifier(key: PseudonymKey, field: str, value: str) -> None:
    record = {"event_id": uuid.uuid4(), "source": "t", **IDENTITY, "ward": "MICU", "bed": "b",
              "device_id": "mon-0a0b0c", "observed_at": T0, field: value}
    outputs = make_pseudonymizer(key).handle(Input("bedside.vitals", 0, 3, None, registry.encode("bedside_vitals", record)))
    (letter,) = by_topic(outputs, "dead.letters.identified")
    (audit,) = by_topic(outputs, "audit.events")
    assert field in letter.reason
    assert letter.error_type == "validation"
    assert audit.action == "input.rejected"
    assert by_topic(outputs, "vitals.pseudonymized") == []


def test_pseudonymizer_reason_never_quotes_identifier(key: PseudonymKey) -> None:
    record = {"event_id": uuid.uuid4(), "source": "t", **IDENTITY, "record_number": "", "ward": "MICU", "bed": "b",
              "device_id": "d", "observed_at": T0, "patient_name": "Ines Virtanen"}
    outputs = make_pseudonymizer(key).handle(Input("bedside.vitals", 0, 0, None, registry.encode("bedside_vitals", record)))
    (letter,) = by_topic(outputs, "dead.letters.identified")
    assert "record_number" in letter.reason
    assert "Virtanen" not in letter.reason
    assert letter.error_type == "validation"


def test_pseudonymizer_rejects_unknown_device(key: PseudonymKey) -> None:
    stage = make_pseudonymizer(key, monitors=("mon-ffffff",))
    outputs = stage.handle(bedside())
    (letter,) = by_topic(outputs, "dead.letters.identified")
    (audit,) = by_topic(outputs, "audit.events")
    assert letter.error_type == "unknown_device"
    assert stage.vault.device_pseudonym("mon-0a0b0c") in letter.reason
    assert "mon-0a0b0c" not in letter.reason
    assert audit.action == "input.rejected"
    assert json.loads(audit.details)["error_type"] == "unknown_device"
    assert by_topic(outputs, "vitals.pseudonymized") == []


def test_pseudonymizer_gives_unknown_device_no_pseudonym(key: PseudonymKey) -> None:
    stage = make_pseudonymizer(key, monitors=())
    stage.handle(bedside())
    assert stage.vault.identities() == {}


def test_pseudonymizer_accepts_device_registered_elsewhere(key: PseudonymKey, tmp_path: Path) -> None:
    stage = PseudonymizerStage(Vault(tmp_path / "vault.sqlite3", bytes(32), key.secret))
    assert by_topic(stage.handle(bedside()), "vitals.pseudonymized") == []
    # Another process (the `clinops devices register` command) registers the monitor.
    Vault(tmp_path / "vault.sqlite3", bytes(32), key.secret).register_devices(["mon-0a0b0c"], "biomed")
    assert len(by_topic(stage.handle(bedside(1)), "vitals.pseudonymized")) == 1


def test_scorer_scores_partial_news2() -> None:
    outputs = make_scorer().handle(vitals(0, temperature=None, systolic_bp=None))
    (score,) = by_topic(outputs, "risk.scores")
    assert score.news2_partial
    assert score.news2_parameters == 3
    assert score.news2 == 0
    assert score.model_risk is None  # before warm-up


def test_scorer_carries_values_forward() -> None:
    scorer = make_scorer()
    scorer.handle(vitals(0, systolic_bp=85.0))
    (score,) = by_topic(scorer.handle(vitals(1, systolic_bp=None)), "risk.scores")
    assert score.news2 == 3  # the systolic of 85 one hour earlier still counts
    (later,) = by_topic(scorer.handle(vitals(6, systolic_bp=None)), "risk.scores")
    assert later.news2 == 0  # older than four hours: no longer carried


def test_scorer_flags_late_event_without_changing_state() -> None:
    scorer = make_scorer()
    scorer.handle(vitals(5))
    (late,) = by_topic(scorer.handle(vitals(2, heart_rate=140.0)), "risk.scores")
    assert late.late
    assert scorer.patients["p-1"].latest_at == T0 + 5 * HOUR
    assert scorer.patients["p-1"].history["heart_rate"] == [((T0 + 5 * HOUR).timestamp(), 80.0)]


def test_scorer_alerts_once_per_episode() -> None:
    scorer = make_scorer()
    alerts = []
    for hour in range(6):
        alerts += by_topic(scorer.handle(vitals(hour, heart_rate=135.0, respiratory_rate=26.0)), "alerts.deterioration")
    assert len(alerts) == 1
    assert alerts[0].severity.value == "HIGH" or "news2>=5" in alerts[0].reasons
    assert alerts[0].explanations[:2] == ["heart rate 135/min", "respiratory rate 26/min"]
    for hour in range(6, 12):
        scorer.handle(vitals(hour))
    again = by_topic(scorer.handle(vitals(12, heart_rate=135.0, respiratory_rate=26.0)), "alerts.deterioration")
    assert len(again) == 1


def test_scorer_holds_discharge_until_last_vitals() -> None:
    scorer = make_scorer()
    scorer.handle(vitals(0))
    outputs = scorer.handle(outcome("DISCHARGE", 2))
    assert [a.action for a in by_topic(outputs, "audit.events")] == ["outcome.received"]
    assert "p-1" in scorer.patients

    # The patient's last vitals arrive after the discharge and let it through.
    later = scorer.handle(vitals(1))
    performance = [a for a in by_topic(later, "audit.events") if a.action == "model.performance"]
    assert len(performance) == 1
    assert json.loads(performance[0].details)["labels"] == 2
    assert "p-1" not in scorer.patients


def test_scorer_flushes_discharges_when_idle() -> None:
    scorer = make_scorer()
    scorer.handle(vitals(0))
    scorer.handle(outcome("DISCHARGE", 5))
    assert scorer.flush_idle() == []  # input arrived just now
    scorer._last_input -= IDLE_FLUSH_S + 1  # as if the feed had gone quiet
    assert [a.action for a in by_topic(scorer.flush_idle(), "audit.events")] == ["model.performance"]
    assert "p-1" not in scorer.patients


def test_scorer_late_tick_keeps_discharges() -> None:
    # A tick delayed by the worker's own pause (a model save) is not a quiet feed.
    scorer = make_scorer()
    scorer.handle(vitals(0))
    scorer.handle(outcome("DISCHARGE", 5))
    assert scorer.flush_idle() == []
    scorer._last_tick -= 10.0
    scorer._last_input -= IDLE_FLUSH_S + 10
    assert scorer.flush_idle() == []
    assert "p-1" in scorer.patients
    scorer._last_input -= IDLE_FLUSH_S + 1  # then quiet for longer than IDLE_FLUSH_S, on time
    assert [a.action for a in by_topic(scorer.flush_idle(), "audit.events")] == ["model.performance"]


def test_scorer_idle_waits_for_drained_inputs() -> None:
    # No input for a while is not idle while the consumer still has a backlog to fetch.
    scorer = make_scorer()
    scorer.handle(vitals(0))
    scorer.handle(outcome("DISCHARGE", 5))
    assert scorer.positions == {("vitals.pseudonymized", 0): 1, ("outcomes.pseudonymized", 0): 1}
    scorer._last_input -= IDLE_FLUSH_S + 1
    assert scorer.flush_idle(drained=lambda: False) == []
    assert "p-1" in scorer.patients
    scorer._last_input -= IDLE_FLUSH_S + 1
    assert [a.action for a in by_topic(scorer.flush_idle(drained=lambda: True), "audit.events")] == ["model.performance"]


def test_scorer_releases_discharge_after_max_hold() -> None:
    scorer = make_scorer()
    scorer.handle(vitals(0))
    scorer.handle(outcome("DISCHARGE", 10))  # last vitals were 10 hours earlier
    assert "p-1" in scorer.patients
    assert by_topic(scorer.handle(vitals(30, subject="p-2")), "audit.events")[-1].action == "risk.scored"
    released = by_topic(scorer.handle(vitals(10 + MAX_HOLD / HOUR, subject="p-2")), "audit.events")
    assert released[-1].action == "model.performance"
    assert "p-1" not in scorer.patients


def test_scorer_labels_from_onset_learn_the_model() -> None:
    scorer = make_scorer()
    for hour in range(10):
        scorer.handle(vitals(hour, subject="p-healthy"))
        scorer.handle(vitals(hour, subject="p-septic", heart_rate=100.0 + 5 * hour))
    scorer.handle(outcome("SEPSIS_ONSET", 9, subject="p-septic"))
    for subject in ("p-septic", "p-healthy"):
        actions = [a.action for a in by_topic(scorer.handle(outcome("DISCHARGE", 10, subject=subject)), "audit.events")]
        assert actions == ["outcome.received", "model.performance"]
    assert scorer.model.learned == 20
    assert scorer.model.positives == 7  # hours 3-9 of the septic stay are within 6 h of onset
    assert scorer.model.ready
    (score,) = by_topic(scorer.handle(vitals(20, subject="p-new")), "risk.scores")
    assert score.model_risk is not None


def test_rejection_log_is_rate_limited(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from processors.messages import RejectionLog

    rejections = RejectionLog(logging.getLogger("test.rejections"), burst=3, period_s=3600)
    with caplog.at_level(logging.WARNING, logger="test.rejections"):
        for offset in range(10):
            rejections.warning(Input("bedside.vitals", 0, offset, b"H55501234", b""), "decode")
    assert len(caplog.records) == 3
    assert rejections._suppressed == 7
    assert all("H55501234" not in record.getMessage() for record in caplog.records)
