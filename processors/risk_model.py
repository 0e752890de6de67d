"""The online deterioration model: River logistic regression on standardized features."""

from __future__ import annotations

from river import linear_model, optim, preprocessing

MODEL_VERSION = "online-logreg-1"


class RiskModel:
    """Predicts the probability of sepsis within the label horizon; learns one label at a time.

    Returns no prediction until it has learned from ``warmup_labels`` labels with both
    classes among them, because an untrained model's 0.5 would read as a risk.
    """

    def __init__(self, warmup_labels: int = 200, version: str = MODEL_VERSION) -> None:
        self.version = version
        self.warmup_labels = warmup_labels
        self.learned = 0
        self.positives = 0
        self._pipeline = preprocessing.StandardScaler() | linear_model.LogisticRegression(
            optimizer=optim.SGD(0.01), l2=1e-4
        )

    @property
    def ready(self) -> bool:
        return self.learned >= self.warmup_labels and 0 < self.positives < self.learned

    def predict(self, x: dict[str, float]) -> float | None:
        if not self.ready:
            return None
        return float(self._pipeline.predict_proba_one(x).get(True, 0.0))

    def learn(self, x: dict[str, float], label: bool) -> None:
        self._pipeline.learn_one(x, label)
        self.learned += 1
        self.positives += int(label)
