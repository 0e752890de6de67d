"""The online deterioration models: River classifiers that learn one delayed label at a time.

Each model kind is a ``ModelSpec``: a name, its hyperparameters and a factory. A
model's version id is the kind plus a digest of the hyperparameters, so two runs of
the same configuration name the same version. The tree ensembles learn through a
random under-sampler, because only about 1.5% of hourly rows carry a positive label,
and trees grown on about 65 negatives per positive rarely split toward the positives.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from processors.performance import StreamingAuroc
from river import base, ensemble, forest, imblearn, linear_model, optim, preprocessing, tree

DEFAULT_SEED = 42


@dataclass(frozen=True)
class ModelSpec:
    """A kind of model: its name, what it is, its hyperparameters and how to build it."""

    name: str
    description: str
    hyperparameters: dict[str, Any]
    build: Callable[[dict[str, Any], int], Any] = field(compare=False)
    # The risk at which this kind alerts, unless CLINOPS_ALERT_MODEL_RISK sets one for all.
    alert_threshold: float = 0.6

    @property
    def version(self) -> str:
        digest = hashlib.sha256(json.dumps(self.hyperparameters, sort_keys=True).encode()).hexdigest()[:8]
        return f"{self.name}-{digest}"


def _logistic_regression(p: dict[str, Any], seed: int) -> Any:
    return preprocessing.StandardScaler() | linear_model.LogisticRegression(
        optimizer=optim.SGD(p["learning_rate"]), loss=optim.losses.Log(weight_pos=p.get("positive_weight", 1.0)),
        l2=p["l2"],
    )


def _under_sampled(model: Any, p: dict[str, Any], seed: int) -> Any:
    share = p["positive_share"]
    return imblearn.RandomUnderSampler(model, desired_dist={False: 1 - share, True: share}, seed=seed)


def _streaming_random_patches(p: dict[str, Any], seed: int) -> Any:
    base = tree.HoeffdingTreeClassifier(grace_period=p["grace_period"], delta=p["delta"])
    return _under_sampled(ensemble.SRPClassifier(model=base, n_models=p["n_models"], seed=seed), p, seed)


def _mondrian_forest(p: dict[str, Any], seed: int) -> Any:
    return _under_sampled(forest.AMFClassifier(n_estimators=p["n_models"], seed=seed), p, seed)


def _adaptive_random_forest(p: dict[str, Any], seed: int) -> Any:
    return _under_sampled(forest.ARFClassifier(n_models=p["n_models"], seed=seed), p, seed)


class ProbabilityMean(base.Classifier):
    """Averages the positive-class probabilities of classifiers that all learn every label.

    River 0.26's VotingClassifier votes on labels and has no ``predict_proba_one``.
    """

    def __init__(self, models: list[Any]) -> None:
        self.models = models

    def learn_one(self, x: dict[str, float], y: bool) -> None:
        for model in self.models:
            model.learn_one(x, y)

    def predict_proba_one(self, x: dict[str, float]) -> dict[bool, float]:
        positive = sum(model.predict_proba_one(x).get(True, 0.0) for model in self.models) / len(self.models)
        return {False: 1.0 - positive, True: positive}


def _mean_of(p: dict[str, Any], seed: int) -> Any:
    return ProbabilityMean([MODEL_SPECS[kind].build(hyperparameters, seed) for kind, hyperparameters in p["members"].items()])


def _members(*kinds: str) -> dict[str, dict[str, Any]]:
    return {kind: MODEL_SPECS[kind].hyperparameters for kind in kinds}


MODEL_SPECS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("logreg", "logistic regression on standardized features",
                  {"learning_rate": 0.01, "l2": 1e-4}, _logistic_regression),
        ModelSpec("logreg-weighted", "logistic regression on standardized features, positives weighted 10, slower steps",
                  {"learning_rate": 0.001, "l2": 1e-4, "positive_weight": 10.0}, _logistic_regression),
        ModelSpec("srp", "streaming random patches of 10 Hoeffding trees, negatives under-sampled to 80%",
                  {"n_models": 10, "grace_period": 50, "delta": 0.01, "positive_share": 0.2}, _streaming_random_patches),
        ModelSpec("amf", "aggregated Mondrian forest of 10 trees, negatives under-sampled to 80%",
                  {"n_models": 10, "positive_share": 0.2}, _mondrian_forest),
        ModelSpec("arf", "adaptive random forest of 10 trees, negatives under-sampled to 80%",
                  {"n_models": 10, "positive_share": 0.2}, _adaptive_random_forest),
    )
}
# The members' hyperparameters are part of the ensemble's, so they are in its version id.
# Its probabilities sit lower than its tree members', so it alerts at its own threshold (docs/model.md).
# NOTE: its trees grow without bound: 428 MB pickled after 6,000 stays, and each save blocks the worker for seconds.
MODEL_SPECS["ensemble"] = ModelSpec("ensemble", "mean of the probabilities of logreg-weighted, amf and srp",
                                    {"members": _members("logreg-weighted", "amf", "srp")}, _mean_of,
                                    alert_threshold=0.27)


class RiskModel:
    """Predicts the probability of sepsis within the label horizon; learns one label at a time.

    Returns no prediction until it has learned from ``warmup_labels`` labels with both
    classes among them, because an untrained model's output would read as a risk.
    Prediction does not change the model: River 0.26 learns unsupervised steps such as
    the scaler during prediction only inside ``compose.learn_during_predict``. The
    model also keeps what a registry records: the feature names it learned from and
    the event-time window of its labels.
    """

    # Class defaults, so that models pickled before these attributes existed still load.
    features: tuple[str, ...] = ()
    first_label_at: datetime | None = None
    last_label_at: datetime | None = None

    def __init__(self, kind: str = "logreg", warmup_labels: int = 200, seed: int = DEFAULT_SEED) -> None:
        if kind not in MODEL_SPECS:
            raise ValueError(f"unknown model kind {kind!r}; choose one of {', '.join(MODEL_SPECS)}")
        self.spec = MODEL_SPECS[kind]
        self.version = self.spec.version
        self.warmup_labels = warmup_labels
        self.learned = 0
        self.positives = 0
        # Progressive AUROC: each prediction scored against its label before the model learns it.
        self.auroc = StreamingAuroc(0.0, 1.0, 1001)
        self._model = self.spec.build(self.spec.hyperparameters, seed)

    def __setstate__(self, state: dict[str, Any]) -> None:
        # Models pickled before the progressive AUROC existed start one when they load.
        self.__dict__.update(state)
        self.__dict__.setdefault("auroc", StreamingAuroc(0.0, 1.0, 1001))

    @property
    def ready(self) -> bool:
        return self.learned >= self.warmup_labels and 0 < self.positives < self.learned

    def predict(self, x: dict[str, float]) -> float | None:
        if not self.ready:
            return None
        return float(self._model.predict_proba_one(x).get(True, 0.0))

    def learn(self, x: dict[str, float], label: bool, observed_at: datetime | None = None) -> None:
        """Learn the label of the observation made at ``observed_at`` (event time)."""
        self._model.learn_one(x, label)
        self.learned += 1
        self.positives += int(label)
        if len(x) != len(self.features):
            self.features = tuple(x)
        if observed_at is not None:
            self.first_label_at = observed_at if self.first_label_at is None else min(self.first_label_at, observed_at)
            self.last_label_at = observed_at if self.last_label_at is None else max(self.last_label_at, observed_at)
