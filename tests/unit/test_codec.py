"""Avro single-object codec: exact header bytes, round trips, schema resolution, errors."""

from __future__ import annotations

import io
import json
import uuid
from datetime import datetime, timezone
from pathlib import Path

import fastavro
import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.codec import AVRO_DIR, SchemaRegistry, registry
from schemas.errors import DecodeError
from schemas.models import VITAL_RANGES, PseudonymizedVitals, RiskScore

UTC = timezone.utc


def test_null_schema_fingerprint_matches_avro_spec(tmp_path: Path) -> None:
    # The Avro specification's test vector: CRC-64-AVRO of "null" is 0x63dd24e7cc258f8a,
    # written little-endian in single-object headers.
    (tmp_path / "null.avsc").write_text('"null"')
    schema = SchemaRegistry(tmp_path).schema("null")
    assert schema.fingerprint == bytes.fromhex("8a8f25cce724dd63")


def test_header_is_marker_and_fingerprint() -> None:
    record = {"event_id": uuid.UUID(int=1), "stage": "s", "topic": "t", "partition": 0, "offset": 1,
              "error_type": "decode", "reason": "r", "payload": b"", "rejected_at": datetime(2026, 1, 1, tzinfo=UTC)}
    blob = registry.encode("dead_letter", record)
    assert blob[:2] == b"\xc3\x01"
    assert blob[2:10] == registry.schema("dead_letter").fingerprint


def test_every_schema_has_distinct_fingerprint() -> None:
    fingerprints = [registry.schema(name).fingerprint for name in registry.names]
    assert len(set(fingerprints)) == len(fingerprints) == 10


vital = st.one_of(st.none(), st.floats(min_value=20.0, max_value=100.0, allow_nan=False))


@given(
    heart_rate=vital, spo2=vital, consciousness=st.sampled_from([None, "ALERT", "CVPU"]),
    oxygen=st.one_of(st.none(), st.booleans()), micros=st.integers(min_value=0, max_value=2**50),
    age_band=st.one_of(st.none(), st.sampled_from(["60-69", "90+"])),
)
def test_pseudonymized_vitals_round_trip(heart_rate, spo2, consciousness, oxygen, micros, age_band) -> None:
    event = PseudonymizedVitals(
        event_id=uuid.uuid4(), source="test", pseudonym="p-1", key_id="k-1", age_band=age_band, ward="MICU",
        observed_at=datetime.fromtimestamp(micros / 1e6, tz=UTC), heart_rate=heart_rate, spo2=spo2,
        consciousness=consciousness, supplemental_oxygen=oxygen,
    )
    assert PseudonymizedVitals.from_avro(event.to_avro()) == event


def test_unknown_fingerprint_is_decode_error() -> None:
    with pytest.raises(DecodeError, match="unknown schema fingerprint"):
        registry.decode(b"\xc3\x01" + b"\x00" * 8 + b"body")


@pytest.mark.parametrize("data", [b"", b"\xc3", b"{json}", b"\x00\x01" + b"\x00" * 12])
def test_missing_header_is_decode_error(data: bytes) -> None:
    with pytest.raises(DecodeError, match="not Avro single-object"):
        registry.decode(data)


def test_truncated_body_is_decode_error() -> None:
    event = PseudonymizedVitals(event_id=uuid.uuid4(), source="s", pseudonym="p", key_id="k", ward="W",
                                observed_at=datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(DecodeError):
        registry.decode(event.to_avro()[:-5])


def test_wrong_schema_is_decode_error() -> None:
    event = PseudonymizedVitals(event_id=uuid.uuid4(), source="s", pseudonym="p", key_id="k", ward="W",
                                observed_at=datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(DecodeError, match="expected a risk_score message"):
        registry.decode(event.to_avro(), "risk_score")


def test_older_writer_schema_resolves_to_current(tmp_path: Path) -> None:
    # Version 1 of dead_letter lacked "reason"; the current version adds it with a default.
    current = json.loads((AVRO_DIR / "dead_letter.avsc").read_text())
    for field in current["fields"]:
        if field["name"] == "reason":
            field["default"] = "unknown"
    old = dict(current, fields=[f for f in current["fields"] if f["name"] != "reason"])

    reader_dir, writer_dir = tmp_path / "reader", tmp_path / "writer"
    (reader_dir / "history").mkdir(parents=True)
    writer_dir.mkdir()
    (reader_dir / "dead_letter.avsc").write_text(json.dumps(current))
    (reader_dir / "history" / "dead_letter@1.avsc").write_text(json.dumps(old))
    (writer_dir / "dead_letter.avsc").write_text(json.dumps(old))

    blob = SchemaRegistry(writer_dir).encode("dead_letter", {
        "event_id": uuid.UUID(int=2), "stage": "s", "topic": "t", "partition": 0, "offset": 3,
        "error_type": "decode", "payload": b"x", "rejected_at": datetime(2026, 1, 1, tzinfo=UTC),
    })
    reader = SchemaRegistry(reader_dir)
    writer, record = reader.decode(blob, "dead_letter")
    assert writer.fingerprint != reader.schema("dead_letter").fingerprint
    assert record["reason"] == "unknown"
    assert record["offset"] == 3


def test_vital_ranges_cover_every_vital_field() -> None:
    schema = json.loads((AVRO_DIR / "pseudonymized_vitals.avsc").read_text())
    double_fields = {f["name"] for f in schema["fields"] if f["type"] == ["null", "double"]}
    assert double_fields == set(VITAL_RANGES)


def test_version_one_pseudonymized_vitals_still_decode() -> None:
    # Version 1 lacked the device pseudonym; the current model reads it as None.
    old = SchemaRegistry(AVRO_DIR / "history").schema("pseudonymized_vitals@1")
    record = {"event_id": uuid.UUID(int=3), "source": "s", "pseudonym": "p-1", "key_id": "k", "age_band": None,
              "sex": None, "ward": "MICU", "observed_at": datetime(2026, 1, 1, tzinfo=UTC), "heart_rate": 80.0}
    body = io.BytesIO()
    fastavro.schemaless_writer(body, old.parsed, {**{f["name"]: None for f in old.parsed["fields"]}, **record})
    message = b"\xc3\x01" + old.fingerprint + body.getvalue()
    event = PseudonymizedVitals.from_avro(message)
    assert event.device is None
    assert event.heart_rate == 80.0


def test_version_one_risk_scores_still_decode() -> None:
    # Version 1 had no challenger risks; the current model reads them as empty.
    old = SchemaRegistry(AVRO_DIR / "history").schema("risk_score@1")
    record = {"event_id": uuid.UUID(int=4), "pseudonym": "p-1", "observed_at": datetime(2026, 1, 1, tzinfo=UTC),
              "news2": 3, "news2_parameters": 5, "news2_partial": True, "news2_red_flag": False, "model_risk": 0.2,
              "model_version": "logreg-1", "late": False}
    body = io.BytesIO()
    fastavro.schemaless_writer(body, old.parsed, record)
    score = RiskScore.from_avro(b"\xc3\x01" + old.fingerprint + body.getvalue())
    assert score.challenger_risks == {}
    assert score.model_risk == 0.2
