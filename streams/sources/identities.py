"""Synthetic patient identities for stays that come without one.

The PhysioNet files carry no names or record numbers, but the pseudonymizer needs
realistic direct identifiers to remove. Each identity is derived from the stay id with
SHA-256, so every replay of a stay gives the same patient.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

FEMALE_NAMES = (
    "Anna", "Maria", "Sofia", "Emma", "Laura", "Julia", "Sarah", "Elena", "Clara", "Ines",
    "Hannah", "Lea", "Marta", "Eva", "Alice", "Nora", "Olivia", "Rosa", "Ingrid", "Amira",
)
MALE_NAMES = (
    "Lukas", "David", "Jonas", "Paul", "Marco", "Daniel", "Peter", "Tomas", "Felix", "Omar",
    "Samuel", "Martin", "Henrik", "Louis", "Pablo", "Erik", "Noah", "Karl", "Mateo", "Ivan",
)
FAMILY_NAMES = (
    "Keller", "Novak", "Rossi", "Garcia", "Jensen", "Schmidt", "Dubois", "Kowalski", "Silva",
    "Hansen", "Moreau", "Fischer", "Horvat", "Lindqvist", "Costa", "Meyer", "Nowak", "Berg",
    "Weber", "Romano", "Petrov", "Martin", "Bauer", "Larsen", "Ortiz", "Virtanen", "Murphy",
    "Walsh", "Kaya", "Haddad", "Brennan", "Okafor", "Sato", "Nakamura", "Fernandes", "Vogel",
    "Schneider", "Ricci", "Lopez", "Andersen",
)


@dataclass(frozen=True)
class Identity:
    """Direct identifiers of one synthetic patient."""

    record_number: str
    name: str
    birth_date: date
    bed: str
    device_id: str


def synthesize_identity(stay_id: str, sex: str | None, age: float | None, admitted_at: datetime, ward: str) -> Identity:
    """Derive a deterministic identity whose age at admission matches ``age``.

    >>> from datetime import timezone
    >>> a = synthesize_identity("p100001", "M", 73, datetime(2026, 1, 1, tzinfo=timezone.utc), "MICU")
    >>> b = synthesize_identity("p100001", "M", 73, datetime(2026, 1, 1, tzinfo=timezone.utc), "MICU")
    >>> a == b, (datetime(2026, 1, 1).date() - a.birth_date).days // 365
    (True, 73)
    """
    seed = int.from_bytes(hashlib.sha256(f"identity:{stay_id}".encode()).digest()[:8], "big")
    rng = random.Random(seed)

    first_names = {"M": MALE_NAMES, "F": FEMALE_NAMES}.get(sex or "", MALE_NAMES + FEMALE_NAMES)
    name = f"{rng.choice(first_names)} {rng.choice(FAMILY_NAMES)}"
    record_number = f"H{rng.randrange(10**8):08d}"

    # Birth date: `age` whole years before admission, then back by up to 364 days more,
    # so the patient is exactly `age` (floored) years old on admission day.
    years = int(age) if age is not None else 60
    admission_day = admitted_at.date()
    try:
        birthday = admission_day.replace(year=admission_day.year - years)
    except ValueError:  # 29 February in a year that has none
        birthday = admission_day.replace(year=admission_day.year - years, day=28)
    birth_date = birthday - timedelta(days=rng.randrange(365))

    bed = f"{ward}-{rng.randrange(1, 25):02d}"
    return Identity(record_number, name, birth_date, bed, monitor_serial(stay_id))


def monitor_serial(stay_id: str) -> str:
    """Return the serial number of the monitor that watches the stay.

    >>> monitor_serial("p100001") == monitor_serial("p100001"), monitor_serial("p100001")[:4]
    (True, 'mon-')
    """
    seed = int.from_bytes(hashlib.sha256(f"identity:{stay_id}".encode()).digest()[:8], "big")
    return f"mon-{seed % 16**6:06x}"
