"""Keyed device pseudonyms and the coarsening of quasi-identifiers.

A device pseudonym is HMAC-SHA256 over the monitor's serial number under a secret key,
so that no one without the key can link it back to a serial, even by hashing every
possible serial. Patient pseudonyms are drawn at random by the vault instead, so that
erasing a patient leaves nothing that could recompute the link.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import date, datetime

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
