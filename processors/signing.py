"""The Ed25519 key that signs audit checkpoints, kept in the key store folder."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from schemas.errors import ClinopsError

PRIVATE_FILE = "audit-signing.key"
PUBLIC_FILE = "audit-signing.pub"


class SigningKeyError(ClinopsError):
    """The audit signing key is missing or unreadable."""


def key_id_of(public_key: bytes) -> str:
    return "ed25519-" + hashlib.sha256(public_key).hexdigest()[:16]


@dataclass(frozen=True)
class Signer:
    private_key: Ed25519PrivateKey

    @property
    def public_key(self) -> bytes:
        return self.private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)

    @property
    def key_id(self) -> str:
        return key_id_of(self.public_key)

    def sign(self, message: bytes) -> bytes:
        return self.private_key.sign(message)


def load_or_create_signer(keys_dir: Path) -> Signer:
    """Load the signing key, creating it (mode 0600) and its public key on first use."""
    private_path = keys_dir / PRIVATE_FILE
    if private_path.exists():
        try:
            key = serialization.load_pem_private_key(private_path.read_bytes(), password=None)
        except ValueError as exc:
            raise SigningKeyError(f"the audit signing key {private_path} is unreadable ({exc}); restore it from backup") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise SigningKeyError(f"{private_path} is not an Ed25519 key")
        return Signer(key)

    keys_dir.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(pem)
    signer = Signer(key)
    (keys_dir / PUBLIC_FILE).write_text(signer.public_key.hex() + "\n")
    return signer


def trusted_public_keys(keys_dir: Path) -> dict[str, bytes]:
    """Return the public keys a verifier trusts, by key id, from the key store folder."""
    path = keys_dir / PUBLIC_FILE
    if not path.exists():
        return {}
    keys = {}
    for line in path.read_text().split():
        public = bytes.fromhex(line)
        keys[key_id_of(public)] = public
    return keys


def verify_signature(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
