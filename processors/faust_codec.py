"""The Avro single-object codec, registered with Faust as ``clinops-avro``."""

from __future__ import annotations

from typing import Any

from faust.serializers import codecs

from schemas.codec import registry
from schemas.models import MODELS, Event

CODEC_NAME = "clinops-avro"
_MODEL_BY_SCHEMA = {model.avro_schema: model for model in MODELS}


class AvroCodec(codecs.Codec):
    """Encode an event model to single-object Avro, and decode back to its model.

    Decoding raises DecodeError or ValidationError; agents that must dead-letter bad
    input read raw bytes and decode themselves instead of relying on this codec.
    """

    def _dumps(self, obj: Any) -> bytes:
        if not isinstance(obj, Event):
            raise TypeError(f"{CODEC_NAME} encodes event models, not {type(obj).__name__}")
        return obj.to_avro()

    def _loads(self, s: bytes) -> Event:
        writer, record = registry.decode(s)
        return _MODEL_BY_SCHEMA[writer.name].model_validate(record)


def register() -> None:
    codecs.register(CODEC_NAME, AvroCodec())
