"""The device registry: the bedside monitors allowed to send vital signs.

The pseudonymizer rejects vital signs from a monitor that is not registered, so that a
misconfigured or foreign device cannot feed patient data into scoring. Registration is
an administrative action and is audited as ``devices.registered``, with a count and no
serial numbers.
"""

from __future__ import annotations

import re
from pathlib import Path

from clinops.admin_audit import record_admin_action
from processors.vault import open_vault
from schemas.errors import ClinopsError
from schemas.models import DEVICE_ID_PATTERN
from streams.settings import Settings


def read_serials(path: Path) -> list[str]:
    """Read one serial number per line; blank lines and lines starting with # are skipped."""
    serials = [line.strip() for line in path.read_text().splitlines()]
    serials = [serial for serial in serials if serial and not serial.startswith("#")]
    if not serials:
        raise ClinopsError(f"{path} lists no serial numbers; write one per line")
    return serials


def validate_serials(serials: list[str]) -> list[str]:
    """Return the serials unchanged, or raise ClinopsError naming the first malformed one."""
    for serial in serials:
        if not re.fullmatch(DEVICE_ID_PATTERN, serial):
            raise ClinopsError(f"{serial!r} is not a monitor serial number: use 4 to 32 letters, digits and hyphens")
    return serials


def register_devices(settings: Settings, serials: list[str], registered_by: str) -> int:
    """Add monitors to the registry and audit it; return how many were new."""
    if not serials:
        return 0
    validate_serials(serials)
    with open_vault(settings) as vault:
        added = vault.register_devices(serials, registered_by)
    if added:
        record_admin_action(settings, registered_by, "devices.registered", "device_registry", "monitors",
                            {"added": str(added), "requested": str(len(serials))})
    return added
