"""Every pydantic model agrees with its Avro schema: field names, types and nullability."""

from __future__ import annotations

import json
import typing
import uuid
from datetime import date, datetime
from enum import Enum

import pytest
from pydantic import AwareDatetime

from schemas.codec import AVRO_DIR
from schemas.models import MODELS, Event

AVRO_PRIMITIVES = {"string": str, "double": float, "int": int, "long": int, "boolean": bool, "bytes": bytes}
LOGICAL = {"uuid": uuid.UUID, "timestamp-micros": datetime, "date": date}


def python_type(avro_type: object) -> tuple[type, bool]:
    """Map an Avro field type to (Python type, nullable)."""
    nullable = False
    if isinstance(avro_type, list):
        nullable = "null" in avro_type
        (avro_type,) = [t for t in avro_type if t != "null"]
    if isinstance(avro_type, dict):
        if "logicalType" in avro_type:
            return LOGICAL[avro_type["logicalType"]], nullable
        if avro_type["type"] == "enum":
            return Enum, nullable
        if avro_type["type"] == "array":
            return list, nullable
        if avro_type["type"] == "map":
            return dict, nullable
        avro_type = avro_type["type"]
    return AVRO_PRIMITIVES[avro_type], nullable


def model_type(annotation: object) -> tuple[type, bool]:
    args = typing.get_args(annotation)
    nullable = type(None) in args
    if nullable:
        (annotation,) = [a for a in args if a is not type(None)]
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    origin = typing.get_origin(annotation)
    if origin is not None:
        return origin, nullable
    if isinstance(annotation, type) and issubclass(annotation, Enum):
        return Enum, nullable
    if annotation is AwareDatetime:
        return datetime, nullable
    return annotation, nullable


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_model_matches_schema(model: type[Event]) -> None:
    schema = json.loads((AVRO_DIR / f"{model.avro_schema}.avsc").read_text())
    avro_fields = {field["name"]: python_type(field["type"]) for field in schema["fields"]}
    hints = typing.get_type_hints(model, include_extras=True)
    model_fields = {name: model_type(hints[name]) for name in model.model_fields}
    assert set(model_fields) == set(avro_fields)
    for name, (avro_python, avro_nullable) in avro_fields.items():
        found, nullable = model_fields[name]
        assert found is avro_python, f"{model.__name__}.{name}: model {found}, Avro {avro_python}"
        assert nullable == avro_nullable, f"{model.__name__}.{name}: nullability differs"
