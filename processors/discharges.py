"""Hold each discharge until the patient's last vitals have been scored.

A discharge releases the patient's pending labels and drops the patient's state, so it must
not overtake vitals that travel on another topic. When a replay runs at full speed
the small outcomes topic is consumed long before the vitals backlog. The gate
therefore waits per patient. A discharge at
time T goes through once that patient's newest vitals are within ``last_vitals_gap``
of T. It also goes through once the partition's vitals have moved ``max_hold`` past T
(the patient's last vitals were much earlier), or when the input goes idle.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass
from datetime import datetime, timedelta

from schemas.models import PseudonymizedOutcome

# A monitor records at least hourly in the ICU and a feed discharges within an hour of
# its last observation (the PhysioNet replay one hour after the last row).
LAST_VITALS_GAP = timedelta(hours=1)
# Upper bound on holding, in event time, so that in a feed that never idles a patient
# whose monitor went quiet long before discharge is still labelled and forgotten.
# The pseudonymizer keeps each event's partition number, so a partition's vitals arrive
# in the order the feed sent them, and a backlog does not carry a partition's newest
# event time past a patient's unprocessed vitals.
MAX_HOLD = timedelta(days=7)


@dataclass(frozen=True)
class HeldDischarge:
    event: PseudonymizedOutcome
    value: bytes
    partition: int


class DischargeGate:
    def __init__(self, last_vitals_gap: timedelta = LAST_VITALS_GAP, max_hold: timedelta = MAX_HOLD) -> None:
        self.last_vitals_gap = last_vitals_gap
        self.max_hold = max_hold
        self._held: dict[str, HeldDischarge] = {}
        self._by_time: dict[int, list[tuple[datetime, str]]] = {}
        self._watermarks: dict[int, datetime] = {}

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, partition: int, event: PseudonymizedOutcome, value: bytes, latest_at: datetime | None) -> list[HeldDischarge]:
        """Take a discharge; return it at once when the patient's last vitals are in."""
        held = HeldDischarge(event, value, partition)
        if latest_at is not None and latest_at >= event.occurred_at - self.last_vitals_gap:
            return [held]
        self._held[event.pseudonym] = held
        heapq.heappush(self._by_time.setdefault(partition, []), (event.occurred_at, event.pseudonym))
        return []

    def on_vitals(self, partition: int, pseudonym: str, latest_at: datetime, observed_at: datetime) -> list[HeldDischarge]:
        """Record scored vitals; return the discharges they let through."""
        released = []
        held = self._held.get(pseudonym)
        if held is not None and latest_at >= held.event.occurred_at - self.last_vitals_gap:
            released.append(self._held.pop(pseudonym))

        watermark = self._watermarks.get(partition)
        if watermark is None or observed_at > watermark:
            self._watermarks[partition] = watermark = observed_at
        queue = self._by_time.get(partition, [])
        while queue and queue[0][0] + self.max_hold <= watermark:
            _, subject = heapq.heappop(queue)
            if subject in self._held:
                released.append(self._held.pop(subject))
        return released

    def flush(self) -> list[HeldDischarge]:
        """Release every held discharge, oldest first."""
        released = sorted(self._held.values(), key=lambda held: held.event.occurred_at)
        self._held.clear()
        self._by_time.clear()
        return released
