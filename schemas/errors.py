"""The project's root exception, shared by every layer."""


class ClinopsError(Exception):
    """Base class for every error this project raises on purpose."""


class DecodeError(ClinopsError):
    """A message is not valid single-object Avro for any known schema."""
