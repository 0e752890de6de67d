"""Event contracts: the Avro schemas, their codec and the pydantic models."""

from schemas.codec import SchemaRegistry, registry
from schemas.errors import ClinopsError, DecodeError

__all__ = ["ClinopsError", "DecodeError", "SchemaRegistry", "registry"]
