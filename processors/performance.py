"""Streaming AUROC over delayed labels, in constant memory."""

from __future__ import annotations


class StreamingAuroc:
    """Area under the ROC curve from score histograms.

    Scores are binned into ``bins`` equal bins over ``[low, high]``; ties within a bin
    count half, as in the Mann-Whitney statistic. With integer scores and one bin per
    integer (NEWS2: ``StreamingAuroc(0, 20, 21)``) the result is exact; otherwise it is
    within one bin width of exact.

    >>> auc = StreamingAuroc(0, 20, 21)
    >>> for score, label in [(1, False), (2, False), (5, True), (2, True)]:
    ...     auc.update(score, label)
    >>> auc.value()
    0.875
    """

    def __init__(self, low: float, high: float, bins: int) -> None:
        self.low, self.high, self.bins = low, high, bins
        self.positive = [0] * bins
        self.negative = [0] * bins

    def _bin(self, score: float) -> int:
        position = (score - self.low) / (self.high - self.low) * (self.bins - 1)
        return min(self.bins - 1, max(0, round(position)))

    def update(self, score: float, label: bool) -> None:
        counts = self.positive if label else self.negative
        counts[self._bin(score)] += 1

    @property
    def count(self) -> int:
        return sum(self.positive) + sum(self.negative)

    def value(self) -> float | None:
        """Return the AUROC, or None until both classes have been seen."""
        positives, negatives = sum(self.positive), sum(self.negative)
        if positives == 0 or negatives == 0:
            return None
        below = 0
        wins = 0.0
        for pos, neg in zip(self.positive, self.negative):
            wins += pos * (below + 0.5 * neg)
            below += neg
        return wins / (positives * negatives)
