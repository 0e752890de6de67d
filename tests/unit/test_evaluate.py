"""The evaluation's threshold tuning: chosen on the first half of stays, measured on the second."""

from __future__ import annotations

from clinops.evaluate import ScoredRow, simulated_alerts, tuned_utility


def stays(separable: bool) -> dict[str, list[ScoredRow]]:
    result = {}
    for index in range(10):
        septic = index % 2 == 0
        result[f"s{index}"] = [
            ScoredRow(label=septic and hour >= 20,
                      model_risk=0.9 if septic and hour >= 16 and separable else 0.1 + 0.01 * index)
            for hour in range(30)
        ]
    return result


def test_tuning_finds_separating_threshold() -> None:
    tuned = tuned_utility(stays(separable=True), lambda row: row.model_risk)
    assert tuned["tuned_threshold"] == 0.9
    assert tuned["tuned_utility_second_half"] > 0.9


def test_uninformative_score_gains_less() -> None:
    informative = tuned_utility(stays(separable=True), lambda row: row.model_risk)
    constant = tuned_utility(stays(separable=True), lambda row: 0.5)
    assert constant["tuned_threshold"] == 0.5
    assert constant["tuned_utility_second_half"] < informative["tuned_utility_second_half"]


def test_simulated_alerts_follow_hysteresis() -> None:
    # Over the threshold for hours 2-5, quiet for 4 hours (over the 3-hour rearm), then again.
    scores = [0.1, 0.1, 0.9, 0.9, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.9]
    assert simulated_alerts(scores, 0.5, rearm_hours=3) == [2, 10]
