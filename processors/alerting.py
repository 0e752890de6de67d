"""When a risk score becomes an alert: thresholds and hysteresis.

An alert is a proposal for a clinician, so it must mean something each time: one
deterioration episode raises one alert, not one per observation. After an alert the
patient stays "alerted" until every threshold has stayed clear for ``rearm`` of event
time. An escalation from MEDIUM to HIGH within an episode raises one more alert.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from processors.news2 import News2


@dataclass(frozen=True)
class AlertPolicy:
    """Thresholds in NEWS2 terms: 5 or more, or a single parameter scoring 3, calls for an
    urgent review (MEDIUM); 7 or more for an emergency response (HIGH).

    ``model_risk`` None means each model's own threshold, because model kinds put their
    probabilities on different scales (processors/risk_model.py).
    """

    news2_medium: int = 5
    news2_high: int = 7
    model_risk: float | None = None
    rearm: timedelta = timedelta(hours=3)

    def assess(self, score: News2, model_risk: float | None,
               model_threshold: float = 0.6) -> tuple[str | None, list[str]]:
        """Return the severity (None, MEDIUM or HIGH) and the reasons for it.

        ``model_threshold`` is the scoring model's own alert threshold, used unless the
        policy sets ``model_risk``.

        >>> from processors.news2 import news2
        >>> AlertPolicy().assess(news2({"heart_rate": 135, "respiratory_rate": 26}), None)
        ('MEDIUM', ['news2>=5', 'news2_single_parameter=3'])
        """
        reasons: list[str] = []
        severity: str | None = None
        total = score.total
        if total is not None and total >= self.news2_high:
            reasons.append(f"news2>={self.news2_high}")
            severity = "HIGH"
        elif total is not None and total >= self.news2_medium:
            reasons.append(f"news2>={self.news2_medium}")
            severity = "MEDIUM"
        if score.red_flag:
            reasons.append("news2_single_parameter=3")
            severity = severity or "MEDIUM"
        threshold = self.model_risk if self.model_risk is not None else model_threshold
        if model_risk is not None and model_risk >= threshold:
            reasons.append(f"model_risk>={threshold:.2f}")
            severity = "HIGH" if severity else "MEDIUM"
        return severity, reasons


@dataclass
class AlertState:
    """One patient's alert episode: the severity alerted, and since when it has been quiet."""

    severity: str | None = None
    quiet_since: datetime | None = None

    def observe(self, at: datetime, severity: str | None, rearm: timedelta) -> bool:
        """Record an assessment at event time ``at``; return True when it raises an alert.

        >>> from datetime import timezone
        >>> t0, hour = datetime(2026, 1, 1, tzinfo=timezone.utc), timedelta(hours=1)
        >>> state = AlertState()
        >>> [state.observe(t0 + i * hour, s, 3 * hour) for i, s in
        ...  enumerate(["MEDIUM", "MEDIUM", "HIGH", None, "MEDIUM", None, None, None, None, "MEDIUM"])]
        [True, False, True, False, False, False, False, False, False, True]
        """
        if severity is None:
            if self.severity is not None:
                self.quiet_since = self.quiet_since or at
                if at - self.quiet_since >= rearm:
                    self.severity = None
                    self.quiet_since = None
            return False

        self.quiet_since = None
        if self.severity is None:
            self.severity = severity
            return True
        if severity == "HIGH" and self.severity == "MEDIUM":
            self.severity = "HIGH"
            return True
        return False
