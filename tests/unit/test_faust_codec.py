"""The Avro codec registered with Faust encodes and decodes event models."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest
from faust.serializers import codecs

from processors.faust_codec import CODEC_NAME, register
from schemas.models import RiskScore


def test_codec_round_trip_through_faust_registry() -> None:
    register()
    score = RiskScore(event_id=uuid.uuid4(), pseudonym="p-1", observed_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
                      news2=4, news2_parameters=5, news2_partial=True, news2_red_flag=False,
                      model_risk=0.12, model_version="v", late=False)
    blob = codecs.dumps(CODEC_NAME, score)
    assert blob[:2] == b"\xc3\x01"
    assert codecs.loads(CODEC_NAME, blob) == score


def test_codec_rejects_plain_objects() -> None:
    register()
    with pytest.raises(TypeError, match="encodes event models"):
        codecs.dumps(CODEC_NAME, {"not": "a model"})
