"""The champion and its challengers: every model scores every observation, one decides.

The champion's risk is the one in the risk score and the one the alert policy reads.
Each challenger scores the same observation in shadow: its risk travels beside the
champion's in the risk score, and the alert policy reads only the champion's. Every model learns every
released label, and each keeps its own progressive AUROC (``RiskModel.auroc``), measured
on its own predictions before it learned their labels. Only a governance decision changes the
champion (processors/model_decisions.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from processors.risk_model import RiskModel


class UnknownModelError(LookupError):
    """A decision named a model version that this lineup does not run."""


class ModelLineup:
    """The models that score on this worker, in a fixed order, and which one is the champion."""

    def __init__(self, models: list[RiskModel], champion: str | None = None) -> None:
        unique: dict[str, RiskModel] = {}
        for model in models:
            unique.setdefault(model.version, model)
        if not unique:
            raise ValueError("a lineup needs at least one model")
        self.models = list(unique.values())
        self.versions = tuple(unique)
        self._champion = 0
        if champion is not None:
            self.promote(champion)

    def __contains__(self, version: str) -> bool:
        return version in self.versions

    def __iter__(self) -> Iterator[RiskModel]:
        return iter(self.models)

    @property
    def champion(self) -> RiskModel:
        return self.models[self._champion]

    @property
    def challengers(self) -> list[RiskModel]:
        return [model for index, model in enumerate(self.models) if index != self._champion]

    def promote(self, version: str) -> str:
        """Make ``version`` the champion; return the version it replaces."""
        if version not in self.versions:
            raise UnknownModelError(f"model {version} does not run on this worker; it runs {', '.join(self.versions)}")
        previous = self.champion.version
        self._champion = self.versions.index(version)
        return previous

    def predict(self, x: dict[str, float]) -> tuple[float | None, ...]:
        """Return every model's risk for ``x``, in lineup order."""
        return tuple(model.predict(x) for model in self.models)

    def champion_risk(self, risks: tuple[float | None, ...]) -> float | None:
        return risks[self._champion] if risks else None

    def challenger_risks(self, risks: tuple[float | None, ...]) -> dict[str, float]:
        """Return the challengers' risks by version, leaving out those still warming up."""
        return {self.versions[index]: risk for index, risk in enumerate(risks)
                if index != self._champion and risk is not None}

    def learn(self, x: dict[str, float], label: bool, risks: tuple[float | None, ...], observed_at: datetime) -> None:
        """Score each model's earlier prediction against ``label``, then let every model learn it.

        ``risks`` are the predictions made when the observation was scored, in lineup
        order; an empty tuple means none was recorded.
        """
        for model, risk in zip(self.models, risks):
            if risk is not None:
                model.auroc.update(risk, label)
        for model in self.models:
            model.learn(x, label, observed_at)
