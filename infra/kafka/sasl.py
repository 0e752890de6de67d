"""SASL/PLAIN users and passwords of the local broker's secured mode.

Why PLAIN and not SCRAM: with PLAIN the broker checks passwords against its own JAAS
configuration, which the launcher writes with the other settings, and the KRaft
controller listener accepts it too. SCRAM would keep credentials in the metadata log, so
they would have to be added when storage is formatted and changed through the admin API.
SCRAM keeps the password off the wire, but every connection here stays on loopback, and
anyone who can read loopback traffic on this machine can read the password file as well.

Passwords are generated once per user into a JSON file under the broker's folder with
mode 0600, and the launcher never prints or logs them.
"""

from __future__ import annotations

import json
import os
import re
import secrets
from pathlib import Path

from schemas.errors import ClinopsError

ADMIN_USER = "admin"
MECHANISM = "PLAIN"
PASSWORD_FILE_NAME = "sasl-passwords.json"
# token_urlsafe produces only these characters, so a password needs no escaping inside
# the double quotes of a JAAS option.
PASSWORD_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,}")
USER_PATTERN = re.compile(r"[a-z][a-z0-9_-]*")
PLAIN_LOGIN_MODULE = "org.apache.kafka.common.security.plain.PlainLoginModule"


class CredentialsError(ClinopsError):
    """The password file is missing, unreadable or contains an invalid entry."""


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` readable by the owner only, also when the file existed."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(descriptor, 0o600)
        os.write(descriptor, text.encode())
    finally:
        os.close(descriptor)


def load_or_create_passwords(path: Path, users: tuple[str, ...]) -> dict[str, str]:
    """Return a password for every user in ``users``, generating and saving missing ones."""
    passwords = read_passwords(path) if path.exists() else {}
    missing = [user for user in users if user not in passwords]
    for user in missing:
        if not USER_PATTERN.fullmatch(user):
            raise CredentialsError(f"invalid SASL user name {user!r}: use lower-case letters, digits, '-' and '_'")
        passwords[user] = secrets.token_urlsafe(24)
    if missing:
        write_private(path, json.dumps(passwords, indent=2) + "\n")
    return {user: passwords[user] for user in users}


def read_passwords(path: Path) -> dict[str, str]:
    """Read the password file. Raises CredentialsError when it is missing or invalid."""
    try:
        passwords = json.loads(path.read_text())
    except FileNotFoundError:
        raise CredentialsError(f"the SASL password file {path} does not exist; start the broker with --secured first") from None
    except json.JSONDecodeError as exc:
        raise CredentialsError(f"the SASL password file {path} is not valid JSON ({exc}); delete it to generate new passwords") from None
    if not isinstance(passwords, dict):
        raise CredentialsError(f"the SASL password file {path} must contain one JSON object of user names and passwords")
    for user, password in passwords.items():
        if not isinstance(password, str) or not PASSWORD_PATTERN.fullmatch(password):
            raise CredentialsError(
                f"the password of {user!r} in {path} is invalid: it needs 16 or more of A-Z, a-z, 0-9, '-' and '_'"
            )
    return passwords


def broker_jaas_config(passwords: dict[str, str], accepted_users: tuple[str, ...]) -> str:
    """Return a listener's JAAS option: the broker logs in as the admin and accepts ``accepted_users``."""
    options = [f'username="{ADMIN_USER}"', f'password="{passwords[ADMIN_USER]}"']
    options += [f'user_{user}="{passwords[user]}"' for user in accepted_users]
    return f"{PLAIN_LOGIN_MODULE} required {' '.join(options)};"


def client_config(user: str, password: str) -> dict[str, str]:
    """Return the librdkafka settings with which ``user`` connects to the secured broker."""
    return {
        "security.protocol": "SASL_PLAINTEXT",
        "sasl.mechanism": MECHANISM,
        "sasl.username": user,
        "sasl.password": password,
    }
