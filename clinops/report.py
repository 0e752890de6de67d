"""The evaluation report: the figures as a table and the ROC and precision-recall curves as SVG."""

from __future__ import annotations

import html
from typing import Any

import numpy as np

WIDTH = HEIGHT = 320
MARGIN = 40
MAX_POINTS = 400
COLOURS = {"champion": "#1f6feb", "news2": "#d1242f"}


def curves(points: list[tuple[float, bool]]) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Return the ROC curve (FPR, TPR) and the precision-recall curve (recall, precision).

    Each distinct score is one threshold, from the highest down.

    >>> roc, pr = curves([(0.9, True), (0.8, False), (0.2, True), (0.1, False)])
    >>> roc
    [(0.0, 0.0), (0.0, 0.5), (0.5, 0.5), (0.5, 1.0), (1.0, 1.0)]
    """
    scores = np.array([score for score, _ in points], dtype=float)
    labels = np.array([label for _, label in points], dtype=bool)
    order = np.argsort(-scores, kind="mergesort")
    scores, labels = scores[order], labels[order]
    last_of_tie = np.r_[scores[1:] != scores[:-1], True]
    true_positives = np.cumsum(labels)[last_of_tie]
    false_positives = np.cumsum(~labels)[last_of_tie]
    positives, negatives = max(int(labels.sum()), 1), max(int((~labels).sum()), 1)
    tpr = true_positives / positives
    fpr = false_positives / negatives
    precision = true_positives / (true_positives + false_positives)
    step = max(1, len(tpr) // MAX_POINTS)
    keep = list(range(0, len(tpr), step))
    if keep[-1] != len(tpr) - 1:
        keep.append(len(tpr) - 1)
    roc = [(0.0, 0.0)] + [(float(fpr[i]), float(tpr[i])) for i in keep]
    pr = [(float(tpr[i]), float(precision[i])) for i in keep]
    return roc, pr


def svg_plot(title: str, x_label: str, y_label: str, series: dict[str, list[tuple[float, float]]], diagonal: bool) -> str:
    """Draw line series on the unit square as an inline SVG element."""
    def x(value: float) -> float:
        return MARGIN + value * (WIDTH - 2 * MARGIN)

    def y(value: float) -> float:
        return HEIGHT - MARGIN - value * (HEIGHT - 2 * MARGIN)

    parts = [f'<svg width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{html.escape(title)}">',
             f'<text x="{WIDTH / 2}" y="16" text-anchor="middle" font-weight="bold">{html.escape(title)}</text>',
             f'<rect x="{MARGIN}" y="{MARGIN}" width="{WIDTH - 2 * MARGIN}" height="{HEIGHT - 2 * MARGIN}" fill="none" stroke="#888"/>',
             f'<text x="{WIDTH / 2}" y="{HEIGHT - 8}" text-anchor="middle">{html.escape(x_label)}</text>',
             f'<text x="12" y="{HEIGHT / 2}" transform="rotate(-90 12 {HEIGHT / 2})" text-anchor="middle">{html.escape(y_label)}</text>']
    for tick in (0.0, 0.5, 1.0):
        parts.append(f'<text x="{x(tick)}" y="{HEIGHT - MARGIN + 14}" text-anchor="middle" font-size="10">{tick:g}</text>')
        parts.append(f'<text x="{MARGIN - 6}" y="{y(tick) + 3}" text-anchor="end" font-size="10">{tick:g}</text>')
    if diagonal:
        parts.append(f'<line x1="{x(0)}" y1="{y(0)}" x2="{x(1)}" y2="{y(1)}" stroke="#ccc" stroke-dasharray="4"/>')
    for index, (name, points) in enumerate(series.items()):
        path = " ".join(f"{x(a):.1f},{y(b):.1f}" for a, b in points)
        colour = COLOURS.get(name, "#555")
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        parts.append(f'<text x="{WIDTH - MARGIN - 4}" y="{MARGIN + 16 + 14 * index}" text-anchor="end" fill="{colour}">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


# The rows of the comparison table, in the order the table and the page show them.
COMPARED_METRICS = ("auroc", "auprc", "threshold", "utility", "sensitivity", "patient_sensitivity",
                    "alerts_per_100_patient_days", "median_lead_hours", "tuned_threshold", "tuned_utility_second_half")


def comparison_columns(result: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Return (title, figures) for the champion, NEWS2 at each alert threshold, and each challenger."""
    news2 = result["news2"]
    columns = [("champion", result["champion"])]
    for threshold, figures in news2["thresholds"].items():
        columns.append((f"NEWS2>={threshold}", {**news2, **figures}))
    for figures in result.get("challengers", {}).values():
        columns.append((f"challenger {figures['kind']}", figures))
    return columns


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return html.escape(str(value))


def render_html(result: dict[str, Any], points: dict[str, list[tuple[float, bool]]]) -> str:
    """Return a self-contained HTML page with the figures and the curves."""
    roc = {}
    pr = {}
    for name, pairs in points.items():
        if pairs:
            roc[name], pr[name] = curves(pairs)
    columns = comparison_columns(result)
    metrics = COMPARED_METRICS
    header = "".join(f"<th>{html.escape(name)}</th>" for name, _ in columns)
    body = "".join(
        f"<tr><td>{metric}</td>" + "".join(f"<td>{_cell(figures.get(metric))}</td>" for _, figures in columns) + "</tr>"
        for metric in metrics
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>clinops evaluation</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}} td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}} td:first-child{{text-align:left}}</style>
</head><body>
<h1>Deterioration model beside NEWS2</h1>
<p>Champion: {html.escape(result['model']['version'])}, {html.escape(result['model']['description'])}.</p>
<p>{result['stays']} stays, {result['rows']} hourly rows ({result['positive_rows']} with SepsisLabel 1, {result['septic_stays']} septic stays).
Progressive validation: every score was computed before its label reached the model. AUROC and AUPRC cover the
{result['rows_scored_by_both']} rows that both scores scored (the model is silent during its warm-up).
Utility is the PhysioNet 2019 normalized utility. Sensitivity is over rows with SepsisLabel 1, and patient sensitivity
counts septic stays alerted within the 48 hours before onset. Alerts use the live hysteresis.
The tuned threshold is the one with the best utility on the first half of the stays; its utility is measured on the second half.</p>
<table><tr><th>metric</th>{header}</tr>{body}</table>
<div>{svg_plot("ROC", "false positive rate", "true positive rate", roc, diagonal=True)}
{svg_plot("Precision-recall", "recall", "precision", pr, diagonal=False)}</div>
</body></html>
"""
