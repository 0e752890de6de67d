"""Delayed labels: released only once the patient's event time shows them."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from processors.labels import LabelJoiner, Pending

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
HOUR = timedelta(hours=1)


def pending(hour: int) -> Pending:
    return Pending.of(T0 + hour * HOUR, {"hour": float(hour)}, (), None)


def test_positive_waits_for_onset_in_event_time() -> None:
    joiner = LabelJoiner()
    for hour in range(4):
        joiner.add("p", pending(hour))
    # The onset message (at hour 8) overtakes the vitals of hours 4 to 8.
    joiner.onset("p", T0 + 8 * HOUR)
    assert joiner.advance("p", T0 + 3 * HOUR) == []
    released = joiner.advance("p", T0 + 8 * HOUR)
    assert [(p.observed_at, label) for p, label in released] == [
        (T0, False), (T0 + HOUR, False), (T0 + 2 * HOUR, True), (T0 + 3 * HOUR, True)]


def test_negative_waits_for_horizon_and_grace() -> None:
    joiner = LabelJoiner(horizon=6 * HOUR, grace=HOUR)
    joiner.add("p", pending(0))
    assert joiner.advance("p", T0 + 7 * HOUR) == []
    assert joiner.advance("p", T0 + 8 * HOUR) == [(pending(0), False)]


def test_discharge_releases_everything() -> None:
    joiner = LabelJoiner()
    joiner.add("p", pending(0))
    joiner.add("p", pending(1))
    joiner.onset("p", T0 + 5 * HOUR)
    assert [label for _, label in joiner.discharge("p")] == [True, True]
    assert len(joiner) == 0


@pytest.mark.parametrize("seed", range(20))
def test_no_label_before_its_horizon(seed: int) -> None:
    """Random stays, onsets that overtake vitals: every label is released no earlier than
    the event time that reveals it, and equals the PhysioNet definition."""
    rng = random.Random(seed)
    horizon, grace = 6 * HOUR, HOUR
    joiner = LabelJoiner(horizon=horizon, grace=grace)
    hours = rng.randint(5, 60)
    onset_hour = rng.choice([None, rng.randint(2, hours + 3)])
    onset_sent_at = None if onset_hour is None else rng.randint(0, onset_hour)  # arrives early or on time
    released: list[tuple[int, Pending, bool]] = []
    for hour in range(hours):
        if onset_sent_at is not None and hour == onset_sent_at:
            joiner.onset("p", T0 + onset_hour * HOUR)
        joiner.add("p", pending(hour))
        released += [(hour, p, label) for p, label in joiner.advance("p", T0 + hour * HOUR)]

    for now_hour, observation, label in released:
        t = observation.observed_at
        now = T0 + now_hour * HOUR
        expected = onset_hour is not None and t >= T0 + onset_hour * HOUR - horizon
        assert label == expected
        onset_seen = onset_hour is not None and now >= T0 + onset_hour * HOUR
        if label:
            assert onset_seen
        else:
            assert onset_seen or now - t > horizon + grace
