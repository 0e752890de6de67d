"""The access policy that decides who may re-identify a patient."""

from __future__ import annotations

from pathlib import Path

import pytest

from clinops.access import AccessPolicy
from schemas.errors import ClinopsError
from streams.settings import PROJECT_ROOT

POLICY = """
[reidentification]
roles = ["physician", "charge_nurse"]

[clinicians]
"dr.keller" = "physician"
"student.rossi" = "medical_student"
"""


@pytest.fixture
def policy(tmp_path: Path) -> AccessPolicy:
    path = tmp_path / "access.toml"
    path.write_text(POLICY)
    return AccessPolicy.load(path)


def test_allowed_role_is_granted(policy: AccessPolicy) -> None:
    assert policy.refusal("dr.keller") is None


def test_other_role_is_refused(policy: AccessPolicy) -> None:
    assert policy.refusal("student.rossi") == "the role medical_student may not re-identify patients"


def test_unknown_clinician_is_refused(policy: AccessPolicy) -> None:
    assert policy.refusal("nobody") == "the clinician is not in the access file"


def test_missing_file_is_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ClinopsError, match="CLINOPS_ACCESS_FILE"):
        AccessPolicy.load(tmp_path / "absent.toml")


@pytest.mark.parametrize("text", ["[clinicians]\n", "[reidentification]\nroles = \"physician\"\n", "roles = ["])
def test_invalid_file_is_clear_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "access.toml"
    path.write_text(text)
    with pytest.raises(ClinopsError, match="access file"):
        AccessPolicy.load(path)


def test_bundled_example_loads() -> None:
    policy = AccessPolicy.load(PROJECT_ROOT / "config" / "access.toml")
    assert policy.refusal("dr.keller") is None
    assert policy.refusal("student.rossi") is not None


def test_model_approvers_own_section() -> None:
    policy = AccessPolicy.load(PROJECT_ROOT / "config" / "access.toml")
    assert policy.approval_refusal("dr.osei") is None
    # Re-identifying patients does not make a clinician a model approver, nor the reverse.
    assert policy.approval_refusal("dr.keller") == (
        "the role physician may not change the live model (approver roles: clinical_safety_officer)")
    assert policy.refusal("dr.osei") is not None
    assert policy.approval_refusal("nobody") == f"nobody is not listed in the access file {PROJECT_ROOT / 'config' / 'access.toml'}"


def test_no_models_section_no_approvers(policy: AccessPolicy) -> None:
    assert policy.approval_refusal("dr.keller") == "the role physician may not change the live model (approver roles: none)"
