"""Roles and permissions from the access file (CLINOPS_ACCESS_FILE, example config/access.toml).

Re-identifying a patient and changing the model that scores live each need a role the
file allows. People are listed by user name under ``[clinicians]``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from schemas.errors import ClinopsError


@dataclass(frozen=True)
class AccessPolicy:
    """People's roles, the roles allowed to re-identify, and those allowed to change the live model."""

    roles_allowed: frozenset[str]
    clinician_roles: dict[str, str]
    model_approver_roles: frozenset[str] = frozenset()
    source: Path | None = None

    @classmethod
    def load(cls, path: Path) -> AccessPolicy:
        try:
            document = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ClinopsError(f"the access file {path} was not found; set CLINOPS_ACCESS_FILE") from None
        except tomllib.TOMLDecodeError as exc:
            raise ClinopsError(f"the access file {path} is not valid TOML: {exc}") from None
        roles = document.get("reidentification", {}).get("roles")
        clinicians = document.get("clinicians", {})
        if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
            raise ClinopsError(f"the access file {path} needs [reidentification] roles = [\"role\", ...]")
        if not isinstance(clinicians, dict) or not all(isinstance(role, str) for role in clinicians.values()):
            raise ClinopsError(f"the access file {path} needs a [clinicians] table of name = \"role\"")
        approvers = document.get("models", {}).get("approvers", [])
        if not isinstance(approvers, list) or not all(isinstance(role, str) for role in approvers):
            raise ClinopsError(f"the access file {path} needs [models] approvers = [\"role\", ...]")
        return cls(frozenset(roles), dict(clinicians), frozenset(approvers), path)

    def refusal(self, clinician: str) -> str | None:
        """Return why ``clinician`` may not re-identify, or None when they may."""
        role = self.clinician_roles.get(clinician)
        if role is None:
            return "the clinician is not in the access file"
        if role not in self.roles_allowed:
            return f"the role {role} may not re-identify patients"
        return None


    def approval_refusal(self, person: str) -> str | None:
        """Return why ``person`` may not promote or roll back a model, or None when they may."""
        role = self.clinician_roles.get(person)
        if role is None:
            return f"{person} is not listed in the access file {self.source}" if self.source else f"{person} is not listed"
        if role not in self.model_approver_roles:
            allowed = ", ".join(sorted(self.model_approver_roles)) or "none"
            return f"the role {role} may not change the live model (approver roles: {allowed})"
        return None
