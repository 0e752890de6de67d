"""``clinops privacy scan``: look for direct identifiers where none may be.

The scan is exact, not a pattern guess. It collects the identifiers that actually
entered the system (record numbers, names, birth dates, monitor serials) from the
identified topics. Then it searches for each of them in every topic after the
pseudonymizer, in the audit store's tables, and in the log files of the data folder.
Findings name the place and the kind of identifier, never the identifier itself.

NOTE: identifiers are known only while the identified topics retain them (24 hours by
default), and a birth date is found only as ISO text (YYYY-MM-DD), not in binary form.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from schemas.codec import registry
from schemas.errors import DecodeError
from streams.sinks.audit_store import AUDIT_TABLE, CHECKPOINT_TABLE, QueryResult
from streams.topics import BEDSIDE_VITALS, CATALOGUE, CLINICAL_OUTCOMES

# ClickHouse's multiSearch functions take at most 255 needles per call.
NEEDLES_PER_QUERY = 200
AUDIT_TEXT_SQL = "concat(actor, '|', action, '|', subject_type, '|', subject_id, '|', details)"
CHECKPOINT_TEXT_SQL = "concat(key_id, '|', public_key, '|', signature)"


@dataclass(frozen=True)
class Finding:
    """An identifier found where it must not be: where, what kind, and a digest to look it up."""

    place: str
    kind: str
    digest: str
    count: int = 1

    def line(self) -> str:
        return f"{self.place}: {self.count} x {self.kind} (sha256 {self.digest})"


def digest_of(identifier: str) -> str:
    return hashlib.sha256(identifier.encode()).hexdigest()[:12]


def identifiers_from_messages(values: Iterable[bytes]) -> dict[str, str]:
    """Return identifier -> kind for the identified events among ``values``."""
    found: dict[str, str] = {}
    for value in values:
        try:
            writer, record = registry.decode(value)
        except DecodeError:
            continue
        if writer.name in (BEDSIDE_VITALS.schema, CLINICAL_OUTCOMES.schema):
            found[record["record_number"]] = "record number"
        if writer.name == BEDSIDE_VITALS.schema:
            found[record["patient_name"]] = "name"
            found[record["birth_date"].isoformat()] = "birth date"
            found[record["device_id"]] = "device serial"
    return {identifier: kind for identifier, kind in found.items() if identifier.strip()}


def identifiers_from_vault(settings: object) -> dict[str, str]:
    """Return identifier -> kind for every patient and registered monitor in the vault,
    including those whose identified events have left the topics."""
    from processors.vault import VAULT_FILE, open_vault

    if not (settings.keys_dir / VAULT_FILE).exists():  # type: ignore[attr-defined]
        return {}
    with open_vault(settings) as vault:  # type: ignore[arg-type]
        identities = vault.identities().values()
        serials = [device.serial for device in vault.devices()]
    found: dict[str, str] = dict.fromkeys(serials, "device serial")
    for identity in identities:
        found[identity.record_number] = "record number"
        if identity.name:
            found[identity.name] = "name"
        if identity.birth_date:
            found[identity.birth_date.isoformat()] = "birth date"
        if identity.device_id:
            found[identity.device_id] = "device serial"
    return found


def search_blob(place: str, blob: bytes, identifiers: dict[str, str]) -> list[Finding]:
    """Find each identifier in ``blob`` (message bytes or log text).

    >>> search_blob("log", b"patient H12345678 moved", {"H12345678": "record number", "Ann Lee": "name"})[0].kind
    'record number'
    """
    findings = []
    for identifier, kind in identifiers.items():
        count = blob.count(identifier.encode())
        if count:
            findings.append(Finding(place, kind, digest_of(identifier), count))
    return findings


def scan_topic_messages(topic: str, values: list[bytes], identifiers: dict[str, str]) -> list[Finding]:
    return search_blob(f"topic {topic}", b"\n".join(values), identifiers)


def scan_logs(folder: Path, identifiers: dict[str, str], skip: Path | None = None) -> tuple[list[Finding], int]:
    """Search every ``*.log`` file under ``folder`` except under ``skip``; return findings and files read.

    ``skip`` is the broker's data folder, whose segment files also end in ``.log`` and
    hold the identified topics by design.
    """
    findings: list[Finding] = []
    files = sorted(folder.rglob("*.log")) if folder.exists() else []
    if skip is not None:
        files = [path for path in files if not path.is_relative_to(skip)]
    for path in files:
        findings += search_blob(f"log {path}", path.read_bytes(), identifiers)
    return findings, len(files)


def _sql_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def store_queries(identifiers: dict[str, str]) -> list[tuple[str, str, list[str]]]:
    """Return (place, SQL, needles) triples that count identifiers inside ClickHouse."""
    needles = list(identifiers)
    queries = []
    for start in range(0, len(needles), NEEDLES_PER_QUERY):
        chunk = needles[start:start + NEEDLES_PER_QUERY]
        array = "[" + ", ".join(_sql_string(needle) for needle in chunk) + "]"
        for place, table, text in (("table audit_events", AUDIT_TABLE, AUDIT_TEXT_SQL),
                                   ("table checkpoints", CHECKPOINT_TABLE, CHECKPOINT_TEXT_SQL)):
            sql = (f"SELECT multiSearchFirstIndex({text}, {array}) AS needle, count() FROM {table} "
                   f"WHERE needle > 0 GROUP BY needle")
            queries.append((place, sql, chunk))
    return queries


def findings_from_store(place: str, result: QueryResult, needles: list[str], identifiers: dict[str, str]) -> list[Finding]:
    return [
        Finding(place, identifiers[needles[int(index) - 1]], digest_of(needles[int(index) - 1]), int(count))
        for index, count in result.rows
    ]


def scanned_topics() -> list[str]:
    return [spec.name for spec in CATALOGUE if not spec.identified]
