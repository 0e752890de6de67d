"""Shared fixtures: sample data paths and a fixed pseudonymization key."""

from __future__ import annotations

from pathlib import Path

import pytest

from processors.pseudonym import PseudonymKey

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SAMPLE_DIR = PROJECT_ROOT / "data" / "physionet2019-sample"


@pytest.fixture
def key() -> PseudonymKey:
    return PseudonymKey.from_secret(bytes(range(32)))


@pytest.fixture
def sample_dir() -> Path:
    return SAMPLE_DIR


@pytest.fixture(scope="session")
def chdb_store(tmp_path_factory: pytest.TempPathFactory):
    """The one embedded store of the test process: chDB opens one folder per process,
    so tests share it and keep apart by chain number or action name."""
    from streams.sinks.audit_store import ChdbStore

    return ChdbStore(tmp_path_factory.mktemp("audit-store"))
