"""Keyed pseudonyms and the removal of direct identifiers.

A pseudonym is HMAC-SHA256 over the record number under a secret key, so that no one
without the key can link a pseudonym back to a record number, even by hashing every
possible number. Keys have ids so that they can rotate, and each pseudonymized event
records which key made its pseudonym.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from schemas.errors import ClinopsError

KEY_BYTES = 32


class KeyStoreError(ClinopsError):
    """The pseudonymization key store is missing, unreadable or invalid."""


@dataclass(frozen=True)
class PseudonymKey:
    key_id: str
    secret: bytes

    @classmethod
    def from_secret(cls, secret: bytes) -> PseudonymKey:
        if len(secret) < 16:
            raise KeyStoreError(f"a pseudonymization key needs at least 16 bytes, got {len(secret)}")
        # The id is a digest of the key, so it names the key without revealing it.
        return cls(key_id="k-" + hashlib.sha256(b"key-id:" + secret).hexdigest()[:12], secret=secret)


def load_or_create_key(keys_dir: Path) -> PseudonymKey:
    """Load the current key from ``keys_dir/pseudonym-keys.json``, creating one on first use.

    The file is written with mode 0600, readable by the worker's user only.
    """
    path = keys_dir / "pseudonym-keys.json"
    if path.exists():
        try:
            store = json.loads(path.read_text())
            secret = base64.b64decode(store["keys"][store["current"]])
        except (KeyError, ValueError) as exc:
            raise KeyStoreError(f"the key store {path} is invalid ({exc}); restore it from backup") from exc
        return PseudonymKey.from_secret(secret)

    keys_dir.mkdir(parents=True, exist_ok=True)
    key = PseudonymKey.from_secret(secrets.token_bytes(KEY_BYTES))
    store = {"current": key.key_id, "keys": {key.key_id: base64.b64encode(key.secret).decode()}}
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        json.dump(store, out)
    return key


def pseudonym(record_number: str, key: PseudonymKey) -> str:
    """Return the keyed pseudonym of a record number.

    >>> key = PseudonymKey.from_secret(bytes(range(32)))
    >>> pseudonym("H00012345", key)
    'p-d5261efee27a02ec3c5c48ed'
    """
    digest = hmac.new(key.secret, record_number.strip().encode(), hashlib.sha256).hexdigest()
    return "p-" + digest[:24]


def device_pseudonym(device_id: str, key: PseudonymKey) -> str:
    """Return the keyed pseudonym of a monitor's serial number.

    >>> device_pseudonym("mon-0a0b0c", PseudonymKey.from_secret(bytes(range(32))))[:2]
    'd-'
    """
    digest = hmac.new(key.secret, b"device:" + device_id.strip().encode(), hashlib.sha256).hexdigest()
    return "d-" + digest[:16]


def age_band(birth_date: date, at: datetime) -> str:
    """Return the age at ``at`` in five-year bands, with 90 and over as one band.

    Ages over 89 are grouped because they are rare enough to identify a patient.

    >>> from datetime import timezone
    >>> age_band(date(1950, 6, 1), datetime(2026, 5, 31, tzinfo=timezone.utc)), age_band(date(1920, 1, 1), datetime(2026, 1, 1, tzinfo=timezone.utc))
    ('75-79', '90+')
    """
    day = at.date()
    age = day.year - birth_date.year - ((day.month, day.day) < (birth_date.month, birth_date.day))
    if age < 0:
        raise ValueError("birth date is after the observation")
    if age >= 90:
        return "90+"
    low = age // 5 * 5
    return f"{low}-{low + 4}"
