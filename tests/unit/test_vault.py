"""The pseudonym vault: stable random pseudonyms, encryption, erasure and rotation."""

from __future__ import annotations

import hashlib
import hmac
import sqlite3
from datetime import date
from pathlib import Path

import pytest

from processors.vault import Identity, Vault, VaultError, load_master_key

MASTER = bytes(range(32))
ANNA = Identity("H00012345", "Anna Keller", date(1950, 6, 1), "mon-0a0b0c")


@pytest.fixture
def vault(tmp_path: Path) -> Vault:
    return Vault(tmp_path / "vault.sqlite3", MASTER)


def test_pseudonym_is_stable_and_random(vault: Vault, tmp_path: Path) -> None:
    first = vault.pseudonym(ANNA)
    assert first.startswith("p-")
    assert len(first) == 26
    assert vault.pseudonym(ANNA) == first
    assert vault.pseudonym(Identity("H00099999")) != first
    reopened = Vault(tmp_path / "vault.sqlite3", MASTER)
    assert reopened.pseudonym(Identity("H00012345")) == first


def test_identity_is_encrypted_at_rest(vault: Vault, tmp_path: Path) -> None:
    vault.pseudonym(ANNA)
    raw = (tmp_path / "vault.sqlite3").read_bytes() + (tmp_path / "vault.sqlite3-wal").read_bytes()
    assert b"Anna Keller" not in raw
    assert b"H00012345" not in raw
    assert vault.identities()[vault.pseudonym(ANNA)] == ANNA


def test_wrong_master_key_is_clear_error(vault: Vault, tmp_path: Path) -> None:
    vault.pseudonym(ANNA)
    with pytest.raises(VaultError, match="wrong CLINOPS_MASTER_KEY"):
        Vault(tmp_path / "vault.sqlite3", bytes(32))


def test_erasure_makes_pseudonym_unlinkable(vault: Vault, tmp_path: Path) -> None:
    erased = vault.pseudonym(ANNA)
    assert vault.erase("H00012345") == erased
    assert erased not in vault.identities()
    assert vault.erased(erased)

    # The only link is gone, and the pseudonym was random: the index key, which the
    # vault keeps, computes a lookup value, never the pseudonym.
    database = sqlite3.connect(tmp_path / "vault.sqlite3")
    assert database.execute("SELECT count(*) FROM patients WHERE pseudonym = ?", (erased,)).fetchone()[0] == 0
    assert database.execute("SELECT count(*) FROM patients").fetchone()[0] == 0
    lookup = hmac.new(vault._index_key, b"H00012345", hashlib.sha256)
    assert erased[2:] not in (lookup.hexdigest(), hashlib.sha256(b"H00012345").hexdigest()[:24])

    # Policy: a new event for an erased record number gets a new pseudonym.
    assert vault.pseudonym(ANNA) != erased


def test_erasing_unknown_patient_is_clear_error(vault: Vault) -> None:
    with pytest.raises(VaultError, match="no patient"):
        vault.erase("H99999999")


def test_rotation_keeps_pseudonyms_and_replaces_key(vault: Vault, tmp_path: Path) -> None:
    before = vault.pseudonym(ANNA)
    old_id, new_id = vault.rotate()
    assert old_id != new_id
    assert vault.key_id == new_id
    assert vault.pseudonym(ANNA) == before
    other_process = Vault(tmp_path / "vault.sqlite3", MASTER)
    assert other_process.pseudonym(Identity("H00012345")) == before
    key_ids = [row[0] for row in sqlite3.connect(tmp_path / "vault.sqlite3").execute("SELECT key_id FROM index_keys")]
    assert key_ids == [new_id]


def test_other_process_sees_erasure_after_refresh(tmp_path: Path) -> None:
    worker = Vault(tmp_path / "vault.sqlite3", MASTER)
    admin = Vault(tmp_path / "vault.sqlite3", MASTER)
    erased = worker.pseudonym(ANNA)
    admin.erase("H00012345")
    assert worker.pseudonym(ANNA) == erased  # still cached
    worker.refresh()
    assert worker.pseudonym(ANNA) != erased


def test_master_key_generated_private(tmp_path: Path) -> None:
    key = load_master_key(tmp_path, None)
    assert len(key) == 32
    assert (tmp_path / "master.key").stat().st_mode & 0o777 == 0o600
    assert load_master_key(tmp_path, None) == key
    with pytest.raises(VaultError, match="32 bytes"):
        load_master_key(tmp_path, "c2hvcnQ=")


def test_identity_by_pseudonym(vault: Vault) -> None:
    pseudonym = vault.pseudonym(ANNA)
    assert vault.identity(pseudonym) == ANNA
    assert vault.identity("p-000000000000000000000000") is None
    vault.erase("H00012345")
    assert vault.identity(pseudonym) is None


def test_device_key_is_kept_encrypted(vault: Vault, tmp_path: Path) -> None:
    reopened = Vault(tmp_path / "vault.sqlite3", MASTER)
    assert reopened.device_key == vault.device_key
    raw = (tmp_path / "vault.sqlite3").read_bytes() + (tmp_path / "vault.sqlite3-wal").read_bytes()
    assert vault.device_key.secret not in raw
    assert not list(tmp_path.glob("*.json"))


def test_device_key_from_setting_overrides_vault(tmp_path: Path) -> None:
    vault = Vault(tmp_path / "vault.sqlite3", MASTER, bytes(range(32)))
    assert vault.device_key.secret == bytes(range(32))


def test_device_registry_persists_with_serials_encrypted(vault: Vault, tmp_path: Path) -> None:
    assert vault.register_devices(["mon-0a0b0c", "mon-111111"], "biomed") == 2
    assert vault.register_devices(["mon-0a0b0c"], "biomed") == 0
    assert vault.is_registered(vault.device_pseudonym("mon-0a0b0c"))
    assert not vault.is_registered(vault.device_pseudonym("mon-222222"))

    reopened = Vault(tmp_path / "vault.sqlite3", MASTER)
    assert sorted(device.serial for device in reopened.devices()) == ["mon-0a0b0c", "mon-111111"]
    assert {device.registered_by for device in reopened.devices()} == {"biomed"}
    raw = (tmp_path / "vault.sqlite3").read_bytes() + (tmp_path / "vault.sqlite3-wal").read_bytes()
    assert b"mon-111111" not in raw


def test_outcome_first_identity_completed_later(vault: Vault) -> None:
    pseudonym = vault.pseudonym(Identity("H00012345"))
    assert vault.identity(pseudonym) == Identity("H00012345")
    assert vault.pseudonym(ANNA) == pseudonym
    assert vault.identity(pseudonym) == ANNA
    # A later outcome does not erase what the vital signs brought.
    assert vault.pseudonym(Identity("H00012345")) == pseudonym
    assert vault.identity(pseudonym) == ANNA
