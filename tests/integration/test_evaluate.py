"""`clinops evaluate` end to end: its own broker and worker, figures, JSON and HTML."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from streams.settings import PROJECT_ROOT
from tests.conftest import SAMPLE_DIR

pytestmark = pytest.mark.integration

METRICS = ("auroc", "auprc", "utility", "sensitivity", "alerts_per_100_patient_days", "median_lead_hours")


@pytest.fixture(scope="module")
def evaluation(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess, Path]:
    output = tmp_path_factory.mktemp("evaluation")
    # The evaluation starts a broker of its own from the project's jar cache in var/kafka/jars.
    env = {name: value for name, value in os.environ.items() if name not in ("KAFKA_BOOTSTRAP_SERVERS", "CLINOPS_DATA_DIR")}
    env["CLINOPS_CHALLENGERS"] = "logreg-weighted"
    # 100 stays, admitted one an hour, give the model enough labels (6 septic stays) to pass its warm-up.
    result = subprocess.run(
        [sys.executable, "-m", "clinops.cli", "evaluate", str(SAMPLE_DIR), "--limit", "100", "--output", str(output)],
        env=env, capture_output=True, text=True, timeout=600, check=False, cwd=PROJECT_ROOT,
    )
    return result, output


def test_evaluate_succeeds(evaluation: tuple[subprocess.CompletedProcess, Path]) -> None:
    result, _ = evaluation
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "champion" in result.stdout


def test_evaluation_json_has_both_scores(evaluation: tuple[subprocess.CompletedProcess, Path]) -> None:
    _, output = evaluation
    figures = json.loads((output / "evaluation.json").read_text())
    assert figures["stays"] == 100
    assert figures["model"]["version"].startswith("ensemble-")
    assert figures["rows_scored_by_both"] > 0
    for score in ("champion", "news2"):
        for metric in METRICS:
            assert metric in figures[score], f"{score} lacks {metric}"
        assert 0.0 <= figures[score]["auroc"] <= 1.0
    assert set(figures["news2"]["thresholds"]) == {"5", "7"}
    # The challenger learned the same labels in shadow and is judged on the rows it scored.
    (challenger,) = figures["challengers"].values()
    assert challenger["kind"] == "logreg-weighted"
    assert challenger["rows"] > 0
    assert 0.0 <= challenger["auroc"] <= 1.0
    # A higher NEWS2 threshold alerts less often.
    assert (figures["news2"]["thresholds"]["7"]["alerts_per_100_patient_days"]
            <= figures["news2"]["thresholds"]["5"]["alerts_per_100_patient_days"])


def test_report_has_curves(evaluation: tuple[subprocess.CompletedProcess, Path]) -> None:
    _, output = evaluation
    page = (output / "report.html").read_text()
    assert page.count("<svg") == 2
    assert "champion" in page
    assert "NEWS2" in page
    assert "challenger logreg-weighted" in page
