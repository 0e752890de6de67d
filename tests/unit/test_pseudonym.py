"""Keyed device pseudonyms, key ids and age bands."""

from __future__ import annotations

import hashlib
import hmac
from datetime import date, datetime, timezone

import pytest

from processors.pseudonym import KeyStoreError, PseudonymKey, age_band, device_pseudonym


def test_device_pseudonym_is_hmac_sha256(key: PseudonymKey) -> None:
    expected = hmac.new(key.secret, b"device:mon-0a0b0c", hashlib.sha256).hexdigest()[:16]
    assert device_pseudonym("mon-0a0b0c", key) == "d-" + expected


def test_device_pseudonym_is_not_plain_hash(key: PseudonymKey) -> None:
    # Without the key, hashing candidate serials must not find the pseudonym.
    assert device_pseudonym("mon-0a0b0c", key)[2:] != hashlib.sha256(b"device:mon-0a0b0c").hexdigest()[:16]


def test_key_id_does_not_reveal_key(key: PseudonymKey) -> None:
    assert key.secret.hex()[:12] not in key.key_id


def test_short_key_rejected() -> None:
    with pytest.raises(KeyStoreError, match="at least 16 bytes"):
        PseudonymKey.from_secret(b"short")


@pytest.mark.parametrize(
    ("birth", "at", "band"),
    [
        (date(1956, 6, 2), date(2026, 6, 1), "65-69"),
        (date(1956, 6, 1), date(2026, 6, 1), "70-74"),
        (date(2008, 1, 1), date(2026, 1, 1), "15-19"),
        (date(1937, 1, 2), date(2026, 1, 1), "85-89"),
        (date(1936, 1, 1), date(2026, 1, 1), "90+"),
        (date(1926, 1, 1), date(2026, 1, 1), "90+"),
    ],
)
def test_age_band(birth: date, at: date, band: str) -> None:
    assert age_band(birth, datetime(at.year, at.month, at.day, tzinfo=timezone.utc)) == band


def test_birth_after_observation_rejected() -> None:
    with pytest.raises(ValueError, match="after the observation"):
        age_band(date(2027, 1, 1), datetime(2026, 1, 1, tzinfo=timezone.utc))


def test_device_pseudonym_is_keyed(key: PseudonymKey) -> None:
    other = PseudonymKey.from_secret(bytes(32))
    assert device_pseudonym("mon-0a0b0c", key).startswith("d-")
    assert device_pseudonym("mon-0a0b0c", key) != device_pseudonym("mon-0a0b0c", other)
    assert key.key_id != other.key_id
