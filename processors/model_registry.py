"""What the model registry records about a model version, in its audit events.

The registry lives in the audit log, so it is as tamper-evident as every decision
the models make. A worker records ``model.started`` for each model it runs and
``model.checkpointed`` each time it saves one. The ``audit.model_registry`` view in
ClickHouse (infra/clickhouse/audit.sql) collects them per version. Each record carries the kind, hyperparameters, features, training
window, progressive metrics and the code version.
"""

from __future__ import annotations

import functools
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

from processors.risk_model import RiskModel

SOURCE_ROOT = Path(__file__).resolve().parents[1]


@functools.cache
def code_version() -> str:
    """Return the package version, with the git commit when the code runs from a checkout."""
    version = metadata.version("clinops")
    try:
        commit = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=SOURCE_ROOT, capture_output=True,
                                text=True, timeout=5, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return version
    return f"{version}+g{commit}" if commit else version


def model_record(model: RiskModel, role: str) -> dict[str, Any]:
    """Return the registry's fields for ``model``, as audit event details."""
    return {
        "role": role,
        "kind": model.spec.name,
        "description": model.spec.description,
        "hyperparameters": model.spec.hyperparameters,
        "features": list(model.features),
        "labels": model.learned,
        "positives": model.positives,
        "trained_from": model.first_label_at.isoformat() if model.first_label_at else None,
        "trained_to": model.last_label_at.isoformat() if model.last_label_at else None,
        "progressive_auroc": model.auroc.value(),
        "progressive_auroc_labels": model.auroc.count,
        "code_version": code_version(),
    }
