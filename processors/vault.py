"""The pseudonym vault: who is behind each pseudonym, encrypted, and erasable.

Pseudonyms are random (``p-`` and 24 hex digits), drawn once per patient and stored
here beside the patient's identity. The record number is found again through a lookup
index, HMAC-SHA256 of the record number under the current index key. Two consequences
follow, and they are why pseudonyms are random rather than computed from a key:

- Rotation keeps continuity. ``rotate`` draws a new index key, re-indexes every
  patient and destroys the old key; each patient keeps the same pseudonym.
- Erasure is crypto-shredding. ``erase`` deletes the patient's row, the only link
  between the record number and the random pseudonym, so no key the system keeps can
  recompute it. Audit rows keep the pseudonym, so the audit chain still verifies.

The vault also keeps the device key, which turns monitor serial numbers into device
pseudonyms, and the device registry: the monitors allowed to send vital signs, by
device pseudonym, with their serials encrypted.

Index keys, the device key, identities and serials are encrypted with AES-256-GCM under
a master key from ``CLINOPS_MASTER_KEY`` (base64, 32 bytes). Without it, a master key
is generated into the key folder (mode 0600), which protects a copied database but not
a copied folder.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import sqlite3
import threading
from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from processors.pseudonym import KEY_BYTES, PseudonymKey, device_pseudonym
from schemas.errors import ClinopsError
from streams.settings import Settings

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS index_keys (key_id TEXT PRIMARY KEY, wrapped BLOB NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS patients (
    lookup BLOB PRIMARY KEY, key_id TEXT NOT NULL, pseudonym TEXT NOT NULL UNIQUE,
    identity BLOB NOT NULL, created_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS erasures (pseudonym TEXT PRIMARY KEY, erased_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS secrets (name TEXT PRIMARY KEY, wrapped BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS devices (
    pseudonym TEXT PRIMARY KEY, serial BLOB NOT NULL, registered_by TEXT NOT NULL, registered_at TEXT NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('generation', 0);
"""


VAULT_FILE = "vault.sqlite3"


class VaultError(ClinopsError):
    """The vault is missing its master key, is corrupt, or does not know a patient."""


@dataclass(frozen=True)
class Identity:
    """The direct identifiers the vault keeps for re-identification and leak scans."""

    record_number: str
    name: str | None = None
    birth_date: date | None = None
    device_id: str | None = None


def load_master_key(keys_dir: Path, from_environment: str | None) -> bytes:
    if from_environment:
        key = base64.b64decode(from_environment)
        if len(key) != 32:
            raise VaultError(f"CLINOPS_MASTER_KEY must be 32 bytes in base64, got {len(key)} bytes")
        return key
    path = keys_dir / "master.key"
    if path.exists():
        return base64.b64decode(path.read_text())
    keys_dir.mkdir(parents=True, exist_ok=True)
    key = AESGCM.generate_key(bit_length=256)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(base64.b64encode(key).decode())
    log.warning("generated a master key in %s; in production set CLINOPS_MASTER_KEY from a secret store", path)
    return key


@dataclass(frozen=True)
class Device:
    """A registered monitor: its serial, its pseudonym, and who registered it when."""

    serial: str
    pseudonym: str
    registered_by: str
    registered_at: str


def open_vault(settings: Settings) -> Vault:
    """Open the vault in the key folder with the master and device keys from the settings."""
    master = settings.master_key.get_secret_value() if settings.master_key else None
    device_key = settings.device_key.get_secret_value() if settings.device_key else None
    return Vault(settings.keys_dir / VAULT_FILE, load_master_key(settings.keys_dir, master),
                 base64.b64decode(device_key) if device_key else None)


class Vault:
    """Pseudonyms, encrypted identities, the device key and the device registry.

    ``device_secret`` overrides the device key kept in the vault, for a deployment that
    keeps it in a KMS. Device pseudonyms and the registry depend on it, so it must not change.
    """

    def __init__(self, path: Path, master_key: bytes, device_secret: bytes | None = None) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._aead = AESGCM(master_key)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(SCHEMA)
        self._cache: dict[str, str] = {}
        # Record numbers whose stored identity has only the record number so far.
        self._incomplete: set[str] = set()
        self._generation = self._read_generation()
        self._key_id, self._index_key = self._current_key()
        self.device_key = PseudonymKey.from_secret(device_secret or self._device_secret())
        self._devices = self._registered_devices()

    # Encryption of index keys and identities, bound to their purpose.
    def _seal(self, plaintext: bytes, purpose: bytes) -> bytes:
        nonce = secrets.token_bytes(12)
        return nonce + self._aead.encrypt(nonce, plaintext, purpose)

    def _open(self, sealed: bytes, purpose: bytes) -> bytes:
        try:
            return self._aead.decrypt(sealed[:12], sealed[12:], purpose)
        except Exception as exc:  # cryptography raises InvalidTag without a message
            raise VaultError("cannot decrypt the vault: wrong CLINOPS_MASTER_KEY or a corrupt vault") from exc

    def _current_key(self) -> tuple[str, bytes]:
        row = self._db.execute("SELECT key_id, wrapped FROM index_keys ORDER BY created_at DESC LIMIT 1").fetchone()
        if row is None:
            return self._new_key()
        return row[0], self._open(row[1], b"index-key")

    def _new_key(self) -> tuple[str, bytes]:
        key = secrets.token_bytes(32)
        key_id = "v-" + hashlib.sha256(b"key-id:" + key).hexdigest()[:12]
        now = datetime.now(timezone.utc).isoformat()
        self._db.execute("INSERT INTO index_keys VALUES (?, ?, ?)", (key_id, self._seal(key, b"index-key"), now))
        return key_id, key

    def _device_secret(self) -> bytes:
        row = self._db.execute("SELECT wrapped FROM secrets WHERE name = 'device-key'").fetchone()
        if row is not None:
            return self._open(row[0], b"device-key")
        secret = secrets.token_bytes(KEY_BYTES)
        self._db.execute("INSERT OR IGNORE INTO secrets VALUES ('device-key', ?)", (self._seal(secret, b"device-key"),))
        # Another process may have stored its key first; that key wins.
        return self._open(self._db.execute("SELECT wrapped FROM secrets WHERE name = 'device-key'").fetchone()[0], b"device-key")

    def _registered_devices(self) -> frozenset[str]:
        return frozenset(row[0] for row in self._db.execute("SELECT pseudonym FROM devices"))

    @property
    def key_id(self) -> str:
        return self._key_id

    def _lookup(self, record_number: str, key: bytes | None = None) -> bytes:
        return hmac.new(key or self._index_key, record_number.strip().encode(), hashlib.sha256).digest()

    def _read_generation(self) -> int:
        return int(self._db.execute("SELECT value FROM meta WHERE name = 'generation'").fetchone()[0])

    def refresh(self) -> None:
        """Drop cached pseudonyms after another process erased or rotated."""
        with self._lock:
            generation = self._read_generation()
            if generation != self._generation:
                self._cache.clear()
                self._generation = generation
                self._key_id, self._index_key = self._current_key()
                self._devices = self._registered_devices()

    def pseudonym(self, identity: Identity) -> str:
        """Return the patient's pseudonym, drawing a new one for a patient not yet known.

        An outcome carries only the record number. When a patient's first event is one,
        the vault completes the stored identity from the patient's first vital signs.
        """
        cached = self._cache.get(identity.record_number)
        if cached is not None and (identity.name is None or identity.record_number not in self._incomplete):
            return cached
        with self._lock:
            lookup = self._lookup(identity.record_number)
            row = self._db.execute("SELECT pseudonym, identity FROM patients WHERE lookup = ?", (lookup,)).fetchone()
            if row is None:
                pseudonym = "p-" + secrets.token_hex(12)
                sealed = self._seal(self._encode(identity), b"identity")
                now = datetime.now(timezone.utc).isoformat()
                self._db.execute("INSERT OR IGNORE INTO patients VALUES (?, ?, ?, ?, ?)",
                                 (lookup, self._key_id, pseudonym, sealed, now))
                # Another worker may have inserted first; its pseudonym wins.
                row = self._db.execute("SELECT pseudonym, identity FROM patients WHERE lookup = ?", (lookup,)).fetchone()
            pseudonym, sealed = row
            stored = self._decode(self._open(sealed, b"identity"))
            if stored.name is None and identity.name is not None:
                self._db.execute("UPDATE patients SET identity = ? WHERE lookup = ?",
                                 (self._seal(self._encode(identity), b"identity"), lookup))
                stored = identity
            if stored.name is None:
                self._incomplete.add(identity.record_number)
            else:
                self._incomplete.discard(identity.record_number)
            self._cache[identity.record_number] = pseudonym
            return pseudonym

    @staticmethod
    def _encode(identity: Identity) -> bytes:
        return json.dumps({
            "record_number": identity.record_number, "name": identity.name,
            "birth_date": identity.birth_date.isoformat() if identity.birth_date else None,
            "device_id": identity.device_id,
        }).encode()

    def identities(self) -> dict[str, Identity]:
        """Return every known patient's identity by pseudonym (for scans and re-identification)."""
        with self._lock:
            rows = self._db.execute("SELECT pseudonym, identity FROM patients").fetchall()
        return {pseudonym: self._decode(self._open(sealed, b"identity")) for pseudonym, sealed in rows}

    @staticmethod
    def _decode(plaintext: bytes) -> Identity:
        fields = json.loads(plaintext)
        birth = fields["birth_date"]
        return Identity(fields["record_number"], fields["name"],
                        date.fromisoformat(birth) if birth else None, fields["device_id"])

    def erase(self, record_number: str) -> str:
        """Erase a patient: delete the only link to their pseudonym; return the pseudonym."""
        with self._lock:
            lookup = self._lookup(record_number)
            row = self._db.execute("SELECT pseudonym FROM patients WHERE lookup = ?", (lookup,)).fetchone()
            if row is None:
                raise VaultError("no patient with that record number is in the vault")
            now = datetime.now(timezone.utc).isoformat()
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM patients WHERE lookup = ?", (lookup,))
            self._db.execute("INSERT OR REPLACE INTO erasures VALUES (?, ?)", (row[0], now))
            self._db.execute("UPDATE meta SET value = value + 1 WHERE name = 'generation'")
            self._db.execute("COMMIT")
            self._cache.clear()
            # SQLite keeps deleted pages until they are reused; VACUUM rewrites the file.
            self._db.execute("VACUUM")
            return row[0]

    def rotate(self) -> tuple[str, str]:
        """Replace the index key, re-index every patient and destroy the old key."""
        with self._lock:
            old_id = self._key_id
            rows = self._db.execute("SELECT lookup, identity FROM patients").fetchall()
            self._db.execute("BEGIN IMMEDIATE")
            new_id, new_key = self._new_key()
            for lookup, sealed in rows:
                record_number = json.loads(self._open(sealed, b"identity"))["record_number"]
                self._db.execute("UPDATE patients SET lookup = ?, key_id = ? WHERE lookup = ?",
                                 (self._lookup(record_number, new_key), new_id, lookup))
            self._db.execute("DELETE FROM index_keys WHERE key_id != ?", (new_id,))
            self._db.execute("UPDATE meta SET value = value + 1 WHERE name = 'generation'")
            self._db.execute("COMMIT")
            self._db.execute("VACUUM")
            self._key_id, self._index_key = new_id, new_key
            self._cache.clear()
            return old_id, new_id

    def identity(self, pseudonym: str) -> Identity | None:
        """Return the identity behind a pseudonym, or None when it is unknown or erased."""
        with self._lock:
            row = self._db.execute("SELECT identity FROM patients WHERE pseudonym = ?", (pseudonym,)).fetchone()
        return None if row is None else self._decode(self._open(row[0], b"identity"))

    def device_pseudonym(self, serial: str) -> str:
        return device_pseudonym(serial, self.device_key)

    def is_registered(self, device: str) -> bool:
        """Return True when the monitor with device pseudonym ``device`` is in the registry."""
        if device in self._devices:
            return True
        # A miss reads the table, so that a monitor registered by another process a moment
        # ago is accepted at once. The primary-key lookup costs microseconds.
        with self._lock:
            found = self._db.execute("SELECT 1 FROM devices WHERE pseudonym = ?", (device,)).fetchone() is not None
            if found:
                self._devices = self._devices | {device}
        return found

    def register_devices(self, serials: list[str], registered_by: str) -> int:
        """Add monitors to the device registry; return how many were not registered before."""
        now = datetime.now(timezone.utc).isoformat()
        with self._lock:
            before = self._db.execute("SELECT count(*) FROM devices").fetchone()[0]
            self._db.execute("BEGIN IMMEDIATE")
            for serial in serials:
                self._db.execute("INSERT OR IGNORE INTO devices VALUES (?, ?, ?, ?)",
                                 (self.device_pseudonym(serial), self._seal(serial.strip().encode(), b"serial"),
                                  registered_by, now))
            self._db.execute("UPDATE meta SET value = value + 1 WHERE name = 'generation'")
            self._db.execute("COMMIT")
            self._devices = self._registered_devices()
            return len(self._devices) - before

    def devices(self) -> list[Device]:
        with self._lock:
            rows = self._db.execute("SELECT pseudonym, serial, registered_by, registered_at FROM devices "
                                    "ORDER BY registered_at, pseudonym").fetchall()
        return [Device(self._open(serial, b"serial").decode(), pseudonym, by, at) for pseudonym, serial, by, at in rows]

    def erased(self, pseudonym: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM erasures WHERE pseudonym = ?", (pseudonym,)).fetchone() is not None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Vault:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
