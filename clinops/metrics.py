"""Metrics of an early-warning score, as clinicians and the PhysioNet 2019 challenge use them.

The functions take the rows of one evaluation: true labels (SepsisLabel, 1 from six
hours before onset), scores, and per stay the rows with an alert. They are exact over
all rows, unlike the constant-memory AUROC that the scorer keeps while it runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# The PhysioNet/Computing in Cardiology Challenge 2019 utility, in hours relative to
# sepsis onset: a prediction earns credit from 12 hours before onset, full credit from
# 6 hours before, and less until 3 hours after. A false alarm costs 0.05, a missed
# onset up to 2 (Reyna et al., Critical Care Medicine 48(2), 2020).
DT_EARLY, DT_OPTIMAL, DT_LATE = -12, -6, 3
MAX_U_TP, MIN_U_FN, U_FP, U_TN = 1.0, -2.0, -0.05, 0.0
# SepsisLabel turns 1 six hours before the clinical onset.
LABEL_LEAD_HOURS = 6
# An alert counts toward an onset only within this many hours before it. An alert days
# earlier was about another problem, and counting it would inflate the lead time.
ALERT_WINDOW_HOURS = 48


def auroc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Return the area under the ROC curve, ties counted half; None without both classes.

    >>> auroc([0.1, 0.4, 0.35, 0.8], [False, False, True, True])
    0.75
    """
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=float)
    positives, negatives = int(y.sum()), int((~y).sum())
    if positives == 0 or negatives == 0:
        return None
    ranks = _average_ranks(s)
    return float((ranks[y].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    ranks = np.empty(len(values), dtype=float)
    # Each run of equal values gets the mean of the ranks it spans (1-based).
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(values)]
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + end + 1) / 2
    return ranks


def auprc(scores: Sequence[float], labels: Sequence[bool]) -> float | None:
    """Return the average precision (area under the precision-recall curve, step-wise).

    Tied scores form one threshold. None without a positive.

    >>> round(auprc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]), 4)
    0.8333
    """
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=float)
    positives = int(y.sum())
    if positives == 0:
        return None
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    last_of_tie = np.r_[s[1:] != s[:-1], True]
    true_positives = np.cumsum(y)[last_of_tie]
    predicted = (np.arange(1, len(y) + 1))[last_of_tie]
    precision = true_positives / predicted
    recall_gain = np.diff(np.r_[0, true_positives]) / positives
    return float((precision * recall_gain).sum())


@dataclass(frozen=True)
class Stay:
    """One patient's hourly rows in time order: true labels and whether an alert was on."""

    labels: Sequence[bool]
    predictions: Sequence[bool]

    @property
    def onset_index(self) -> int | None:
        """Return the row of the clinical onset (six rows after the first positive label)."""
        for index, label in enumerate(self.labels):
            if label:
                return index + LABEL_LEAD_HOURS
        return None


def _utility(stay: Stay, predictions: Sequence[bool]) -> float:
    onset = stay.onset_index
    total = 0.0
    for t, predicted in enumerate(predictions):
        if onset is None:
            total += U_FP if predicted else U_TN
            continue
        hours = t - onset
        if hours > DT_LATE:
            continue
        if predicted:
            if hours <= DT_OPTIMAL:
                # Credit grows from 0 at DT_EARLY to MAX_U_TP at DT_OPTIMAL; earlier is a false alarm.
                total += max(MAX_U_TP * (hours - DT_EARLY) / (DT_OPTIMAL - DT_EARLY), U_FP)
            else:
                total += MAX_U_TP * (DT_LATE - hours) / (DT_LATE - DT_OPTIMAL)
        elif hours > DT_OPTIMAL:
            # A missed onset costs more the closer it gets, down to MIN_U_FN at DT_LATE.
            total += MIN_U_FN * (hours - DT_OPTIMAL) / (DT_LATE - DT_OPTIMAL)
    return total


def normalized_utility(stays: Sequence[Stay]) -> float:
    """Return the challenge's normalized utility: 1 for the best possible alerts, 0 for none.

    >>> septic = Stay([False] * 10 + [True] * 8, [False] * 18)
    >>> normalized_utility([septic])
    0.0
    """
    observed = best = inaction = 0.0
    for stay in stays:
        observed += _utility(stay, stay.predictions)
        inaction += _utility(stay, [False] * len(stay.labels))
        best += _utility(stay, _best_predictions(stay))
    if best == inaction:
        return 0.0
    return (observed - inaction) / (best - inaction)


def _best_predictions(stay: Stay) -> list[bool]:
    onset = stay.onset_index
    if onset is None:
        return [False] * len(stay.labels)
    return [onset + DT_EARLY <= t <= onset + DT_LATE for t in range(len(stay.labels))]


@dataclass(frozen=True)
class AlertFigures:
    """The bedside meaning of one alert threshold."""

    sensitivity: float | None  # share of positive rows with the alert on
    patient_sensitivity: float | None  # share of septic stays alerted in the ALERT_WINDOW_HOURS before onset
    alerts_per_100_patient_days: float
    median_lead_hours: float | None  # first alert in that window, hours before onset


def alert_figures(stays: Sequence[Stay], alert_rows: Sequence[Sequence[int]]) -> AlertFigures:
    """Summarize one threshold: ``stays[i].predictions`` marks the rows at or over it,
    and ``alert_rows[i]`` lists the rows where stay i raised an alert. Alerts with
    hysteresis are far fewer than rows over the threshold, so they are counted apart.

    >>> stay = Stay([False] * 4 + [True] * 8, [False, False, True, True] + [True] * 8)
    >>> figures = alert_figures([stay], [[2]])
    >>> figures.sensitivity, figures.patient_sensitivity, figures.alerts_per_100_patient_days, figures.median_lead_hours
    (1.0, 1.0, 200.0, 8.0)
    """
    positive_rows = alerted_rows = 0
    hours = alerts = 0
    septic = alerted_in_time = 0
    leads: list[float] = []
    for stay, rows in zip(stays, alert_rows):
        hours += len(stay.labels)
        alerts += len(rows)
        for label, predicted in zip(stay.labels, stay.predictions):
            positive_rows += int(label)
            alerted_rows += int(label and predicted)
        onset = stay.onset_index
        if onset is None:
            continue
        septic += 1
        first = min((row for row in rows if onset - ALERT_WINDOW_HOURS <= row <= onset), default=None)
        if first is not None:
            alerted_in_time += 1
            leads.append(float(onset - first))
    return AlertFigures(
        sensitivity=alerted_rows / positive_rows if positive_rows else None,
        patient_sensitivity=alerted_in_time / septic if septic else None,
        alerts_per_100_patient_days=100 * alerts / (hours / 24) if hours else 0.0,
        median_lead_hours=float(np.median(leads)) if leads else None,
    )
