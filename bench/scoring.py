"""Benchmark what the model adds to each scored event, per model kind.

Replays PhysioNet stays in-process through the scorer stage (features, NEWS2, labels
released in event time, learning), admitting one stay an hour as `clinops evaluate`
does. For each model kind it times every prediction the live model makes, which is
what scoring adds to an event, and every call of the stage's ``handle``, which
includes the features, the audit event and learning from released labels. The
stage's time per event without a model's risk (during the warm-up) is the reference.
At the end it pickles the model, as the worker does every minute, and records the
artefact's size and the time the pickling blocks the worker.

Usage: python bench/scoring.py [--stays 1000] [--kinds logreg,ensemble] [--data FOLDER]
"""

from __future__ import annotations

import argparse
import json
import pickle
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pydantic import ValidationError  # noqa: E402

from processors.alerting import AlertPolicy  # noqa: E402
from processors.labels import LabelJoiner  # noqa: E402
from processors.messages import Input  # noqa: E402
from processors.model_lineup import ModelLineup  # noqa: E402
from processors.risk_model import MODEL_SPECS, RiskModel  # noqa: E402
from processors.scorer import ScorerStage  # noqa: E402
from schemas.models import OutcomeKind, PseudonymizedOutcome, PseudonymizedVitals  # noqa: E402
from streams.sources.physionet import Stay, list_stays  # noqa: E402
from streams.sources.replay import admission_time, load_stays  # noqa: E402
from streams.topics import OUTCOMES_PSEUDONYMIZED, VITALS_PSEUDONYMIZED  # noqa: E402

DEFAULT_DATA = ROOT.parent / "shared" / "data" / "physionet2019" / "training_setB"
START = datetime(2026, 1, 1, tzinfo=timezone.utc)


def stay_inputs(stay: Stay, admission_hours: int) -> list[tuple[datetime, Input]]:
    """Return the stay's pseudonymized vitals and outcomes as scorer inputs, with their event times."""
    admitted = admission_time(stay.stay_id, START, admission_hours)
    pseudonym = f"p-{stay.stay_id}"
    inputs = []
    for row in stay.rows:
        at = admitted + timedelta(hours=row.icu_hour)
        try:
            event = PseudonymizedVitals(event_id=uuid.uuid4(), source="bench", pseudonym=pseudonym, key_id="k",
                                        ward=stay.unit, observed_at=at,
                                        **{name: value for name, value in row.vitals.items() if value is not None})
        except ValidationError:
            continue  # the pseudonymizer dead-letters an implausible row, so it never reaches the scorer
        inputs.append((at, Input(VITALS_PSEUDONYMIZED.name, 0, 0, None, event.to_avro())))
    last = max(row.icu_hour for row in stay.rows)
    outcomes = [(OutcomeKind.DISCHARGE, max(last, stay.onset_hour or 0) + 1)]
    if stay.onset_hour is not None:
        outcomes.append((OutcomeKind.SEPSIS_ONSET, stay.onset_hour))
    for kind, hour in outcomes:
        at = admitted + timedelta(hours=hour)
        event = PseudonymizedOutcome(event_id=uuid.uuid4(), source="bench", pseudonym=pseudonym, key_id="k",
                                     outcome=kind, occurred_at=at)
        inputs.append((at, Input(OUTCOMES_PSEUDONYMIZED.name, 0, 0, None, event.to_avro())))
    return inputs


class TimedLineup(ModelLineup):
    """A lineup that records how long each prediction of its models takes."""

    def __init__(self, models: list[RiskModel]) -> None:
        super().__init__(models)
        self.predict_ns: list[int] = []

    def predict(self, x: dict[str, float]) -> tuple[float | None, ...]:
        started = time.perf_counter_ns()
        risks = super().predict(x)
        if risks[0] is not None:
            self.predict_ns.append(time.perf_counter_ns() - started)
        return risks


def median_ms(nanoseconds: list[int]) -> float | None:
    """Return the median in milliseconds, or None when the model never scored."""
    return statistics.median(nanoseconds) / 1e6 if nanoseconds else None


def measure(kind: str, inputs: list[Input]) -> dict[str, float]:
    lineup = TimedLineup([RiskModel(kind)])
    scorer = ScorerStage(AlertPolicy(), LabelJoiner(), lineup)
    warm, ready = [], []
    started = time.perf_counter()
    for message in inputs:
        before = time.perf_counter_ns()
        scorer.handle(message)
        elapsed = time.perf_counter_ns() - before
        if message.topic == VITALS_PSEUDONYMIZED.name:
            (ready if lineup.champion.ready else warm).append(elapsed)
    wall = time.perf_counter() - started
    saved = time.perf_counter()
    artefact = pickle.dumps(lineup.champion, protocol=pickle.HIGHEST_PROTOCOL)
    save_s = time.perf_counter() - saved
    predict = sorted(lineup.predict_ns)
    return {
        "events": len(inputs),
        "wall_s": round(wall, 1),
        "predictions": len(predict),
        "predict_median_ms": median_ms(predict),
        "predict_p95_ms": predict[int(0.95 * (len(predict) - 1))] / 1e6 if predict else None,
        "handle_median_ms_warmup": median_ms(warm),
        "handle_median_ms_scoring": median_ms(ready),
        "labels": lineup.champion.learned,
        "artefact_mb": round(len(artefact) / 1e6, 1),
        "pickle_s": round(save_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stays", type=int, default=1000)
    parser.add_argument("--kinds", default=",".join(MODEL_SPECS))
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "scoring.json")
    args = parser.parse_args()

    stays = load_stays(list_stays(args.data, args.stays))
    admission_hours = max(24, len(stays))
    timed = sorted((pair for stay in stays for pair in stay_inputs(stay, admission_hours)), key=lambda pair: pair[0])
    inputs = [message for _, message in timed]
    results = {}
    for kind in args.kinds.split(","):
        print(f"{kind}: scoring {len(inputs)} events from {len(stays)} stays...", flush=True)
        results[kind] = measure(kind, inputs)
        print(f"  {json.dumps(results[kind])}", flush=True)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({"stays": len(stays), "kinds": results}, indent=2) + "\n")
    print(f"Wrote {args.output}")


if __name__ == "__main__":
    main()
