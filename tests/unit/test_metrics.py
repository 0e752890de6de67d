"""Evaluation metrics against brute force and hand-worked utility cases."""

from __future__ import annotations

import itertools
import random

import pytest

from clinops.metrics import Stay, alert_figures, auprc, auroc, normalized_utility


def brute_force_auroc(scores: list[float], labels: list[bool]) -> float:
    pairs = [(p, n) for p, n in itertools.product(
        [s for s, y in zip(scores, labels) if y], [s for s, y in zip(scores, labels) if not y])]
    wins = 0.0
    for positive, negative in pairs:
        if positive > negative:
            wins += 1.0
        elif positive == negative:
            wins += 0.5
    return wins / len(pairs)


def brute_force_auprc(scores: list[float], labels: list[bool]) -> float:
    positives = sum(labels)
    total, previous_recall = 0.0, 0.0
    for threshold in sorted(set(scores), reverse=True):
        chosen = [y for s, y in zip(scores, labels) if s >= threshold]
        recall = sum(chosen) / positives
        total += (sum(chosen) / len(chosen)) * (recall - previous_recall)
        previous_recall = recall
    return total


@pytest.mark.parametrize("seed", range(5))
def test_auroc_matches_pairwise_count(seed: int) -> None:
    rng = random.Random(seed)
    scores = [rng.choice([0.1, 0.2, 0.5, rng.random()]) for _ in range(200)]
    labels = [rng.random() < 0.2 for _ in range(200)]
    assert auroc(scores, labels) == pytest.approx(brute_force_auroc(scores, labels))


@pytest.mark.parametrize("seed", range(5))
def test_auprc_matches_threshold_sweep(seed: int) -> None:
    rng = random.Random(seed)
    scores = [rng.choice([0.1, 0.2, 0.5, rng.random()]) for _ in range(200)]
    labels = [rng.random() < 0.2 for _ in range(200)]
    assert auprc(scores, labels) == pytest.approx(brute_force_auprc(scores, labels))


def test_metrics_need_both_classes() -> None:
    assert auroc([0.1, 0.2], [False, False]) is None
    assert auprc([0.1, 0.2], [False, False]) is None


def septic_stay(hours: int, first_positive: int, alert_from: int | None) -> Stay:
    labels = [t >= first_positive for t in range(hours)]
    predictions = [alert_from is not None and t >= alert_from for t in range(hours)]
    return Stay(labels, predictions)


def test_utility_of_best_alerts_is_one() -> None:
    # Onset at row 26; the best alerts run from 12 hours before to 3 hours after it.
    labels = [t >= 20 for t in range(40)]
    best = Stay(labels, [14 <= t <= 29 for t in range(40)])
    assert normalized_utility([best]) == pytest.approx(1.0)


def test_utility_of_no_alerts_is_zero() -> None:
    assert normalized_utility([septic_stay(40, 20, None), Stay([False] * 30, [False] * 30)]) == 0.0


def test_utility_charges_false_alarms() -> None:
    septic = septic_stay(40, 20, 14)
    quiet = Stay([False] * 30, [False] * 30)
    noisy = Stay([False] * 30, [True] * 30)
    assert normalized_utility([septic, noisy]) < normalized_utility([septic, quiet])


def test_utility_late_alert_worth_less() -> None:
    early = normalized_utility([septic_stay(40, 20, 20)])
    late = normalized_utility([septic_stay(40, 20, 28)])
    assert 0 < late < early


def test_alert_figures_count_alerts_and_lead() -> None:
    septic = septic_stay(48, 24, 22)  # onset at row 30, first alert at 22: 8 hours ahead
    quiet = Stay([False] * 48, [False] * 48)
    figures = alert_figures([septic, quiet], [[22, 40], []])
    assert figures.patient_sensitivity == 1.0
    assert figures.median_lead_hours == 8.0
    assert figures.alerts_per_100_patient_days == pytest.approx(100 * 2 / 4)
    assert figures.sensitivity == 1.0


def test_alert_after_onset_is_not_in_time() -> None:
    figures = alert_figures([septic_stay(48, 24, 35)], [[35]])
    assert figures.patient_sensitivity == 0.0
    assert figures.median_lead_hours is None


def test_alert_days_before_onset_does_not_count() -> None:
    # Onset at row 80. The alert at row 2 was about something else, so only the one at 70 counts.
    figures = alert_figures([septic_stay(100, 74, 2)], [[2, 70]])
    assert figures.patient_sensitivity == 1.0
    assert figures.median_lead_hours == 10.0
