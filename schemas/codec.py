"""Avro single-object encoding of the project's events with fastavro.

Every message is ``C3 01`` + the 8-byte little-endian CRC-64-AVRO fingerprint of the
writer schema's parsing canonical form + the Avro binary body, as the Avro
specification's "single object encoding" defines it. A reader looks the writer schema
up by fingerprint, so a message written with an older schema version still decodes
(resolved to the current version) and an unknown fingerprint is a clear error.

>>> blob = registry.encode("dead_letter", {
...     "event_id": "00000000-0000-0000-0000-000000000001", "stage": "scorer",
...     "topic": "vitals.pseudonymized", "partition": 0, "offset": 7,
...     "error_type": "decode", "reason": "truncated", "payload": b"",
...     "rejected_at": datetime(2026, 1, 1, tzinfo=timezone.utc)})
>>> blob[:2].hex(), registry.decode(blob, "dead_letter")[1]["offset"]
('c301', 7)
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import datetime, timezone  # noqa: F401 - used by the module example
from pathlib import Path
from typing import Any

import fastavro
from fastavro.schema import fingerprint, to_parsing_canonical_form

from schemas.errors import DecodeError

AVRO_DIR = Path(__file__).resolve().parent / "avro"
MARKER = b"\xc3\x01"
HEADER_SIZE = len(MARKER) + 8


@dataclass(frozen=True)
class AvroSchema:
    """One parsed schema version with its single-object fingerprint."""

    name: str
    full_name: str
    parsed: Any
    fingerprint: bytes
    plain: Any = None  # the same schema with logical types removed

    @classmethod
    def load(cls, path: Path, name: str) -> AvroSchema:
        raw = json.loads(path.read_text())
        # Each file is parsed on its own, so a named type (such as an enum) may be
        # repeated in two files without clashing.
        parsed = fastavro.parse_schema(raw, named_schemas={})
        canonical = to_parsing_canonical_form(raw)
        return cls(
            name=name,
            full_name=f"{raw.get('namespace', '')}.{raw['name']}".lstrip(".") if isinstance(raw, dict) else str(raw),
            parsed=parsed,
            fingerprint=bytes.fromhex(fingerprint(canonical, "CRC-64-AVRO")),
            plain=fastavro.parse_schema(_without_logical_types(raw), named_schemas={}),
        )


def _without_logical_types(schema: Any) -> Any:
    if isinstance(schema, dict):
        return {key: _without_logical_types(value) for key, value in schema.items() if key != "logicalType"}
    if isinstance(schema, list):
        return [_without_logical_types(item) for item in schema]
    return schema


class SchemaRegistry:
    """The schemas in a folder: ``NAME.avsc`` is the current version of NAME, and
    ``history/NAME@N.avsc`` keeps older versions that readers must still decode."""

    def __init__(self, folder: Path = AVRO_DIR) -> None:
        self._current: dict[str, AvroSchema] = {}
        self._by_fingerprint: dict[bytes, AvroSchema] = {}
        for path in sorted(folder.glob("*.avsc")):
            self._add(AvroSchema.load(path, path.stem), current=True)
        for path in sorted(folder.glob("history/*.avsc")):
            self._add(AvroSchema.load(path, path.stem.split("@")[0]), current=False)

    def _add(self, schema: AvroSchema, current: bool) -> None:
        known = self._by_fingerprint.get(schema.fingerprint)
        if known is not None and known.name != schema.name:
            raise ValueError(f"schemas {known.name} and {schema.name} have the same fingerprint")
        self._by_fingerprint[schema.fingerprint] = schema
        if current:
            self._current[schema.name] = schema

    @property
    def names(self) -> list[str]:
        return sorted(self._current)

    def schema(self, name: str) -> AvroSchema:
        try:
            return self._current[name]
        except KeyError:
            raise KeyError(f"no schema named {name!r}; known: {', '.join(self.names)}") from None

    def encode(self, name: str, record: dict[str, Any]) -> bytes:
        """Encode ``record`` with the current version of schema ``name``."""
        schema = self.schema(name)
        out = io.BytesIO()
        out.write(MARKER)
        out.write(schema.fingerprint)
        fastavro.schemaless_writer(out, schema.parsed, record)
        return out.getvalue()

    def decode(self, data: bytes, expected: str | None = None) -> tuple[AvroSchema, dict[str, Any]]:
        """Decode a single-object message into the current version of its schema.

        Returns the writer schema and the record. Raises DecodeError when the header is
        missing, the fingerprint is unknown, the schema is not ``expected`` or the body
        is corrupt.
        """
        if len(data) < HEADER_SIZE or data[:2] != MARKER:
            raise DecodeError(f"not Avro single-object encoded: {len(data)} bytes, header {data[:2].hex() or 'empty'}")
        writer = self._by_fingerprint.get(data[2:HEADER_SIZE])
        if writer is None:
            raise DecodeError(f"unknown schema fingerprint {data[2:HEADER_SIZE].hex()}")
        if expected is not None and writer.name != expected:
            raise DecodeError(f"expected a {expected} message, got {writer.name}")
        reader = self._current.get(writer.name, writer)
        body = io.BytesIO(data[HEADER_SIZE:])
        try:
            record = fastavro.schemaless_reader(
                body, writer.parsed, reader.parsed if reader is not writer else None
            )
        except (EOFError, ValueError, IndexError, UnicodeDecodeError, fastavro.read.SchemaResolutionError) as exc:
            raise DecodeError(f"corrupt {writer.name} body: {exc}") from exc
        if body.tell() != len(data) - HEADER_SIZE:
            raise DecodeError(f"{len(data) - HEADER_SIZE - body.tell()} trailing bytes after the {writer.name} body")
        return writer, record

    def decode_plain(self, data: bytes, expected: str) -> dict[str, Any] | None:
        """Decode a message written with the current version of ``expected`` without
        applying logical types: times stay integers and ids strings, which is several
        times faster. Returns None for any other message; decode() handles those."""
        schema = self._current[expected]
        if data[:2] != MARKER or data[2:HEADER_SIZE] != schema.fingerprint:
            return None
        body = io.BytesIO(data[HEADER_SIZE:])
        try:
            record = fastavro.schemaless_reader(body, schema.plain, None)
        except (EOFError, ValueError, IndexError, UnicodeDecodeError) as exc:
            raise DecodeError(f"corrupt {expected} body: {exc}") from exc
        if body.tell() != len(data) - HEADER_SIZE:
            raise DecodeError(f"{len(data) - HEADER_SIZE - body.tell()} trailing bytes after the {expected} body")
        return record


registry = SchemaRegistry()
